#!/usr/bin/env bash
# Runs staticcheck, installing it through the Go module proxy when missing.
set -euo pipefail
version=2026.2.2
bin="$(go env GOPATH)/bin/staticcheck"
if ! [ -x "$bin" ]; then
  echo "installing staticcheck $version" >&2
  go install "honnef.co/go/tools/cmd/staticcheck@v0.8.2"
fi
exec "$bin" "$@"
