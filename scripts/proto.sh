#!/usr/bin/env bash
# proto.sh — regenerate shared/proto's Go code from environment.proto,
# installing the pinned generators when missing (protoc from Debian's
# protobuf-compiler, as root; the Go plugins through the module proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
gobin="$(go env GOPATH)/bin"
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "proto.sh: protoc is missing: install Debian's protobuf-compiler" >&2
    exit 1
  fi
  apt-get update >&2 && apt-get install -y protobuf-compiler >&2
fi
[ -x "$gobin/protoc-gen-go" ] || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$gobin/protoc-gen-go-grpc" ] || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
go generate ./shared/proto/
