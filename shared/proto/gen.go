// Package proto holds the generated protobuf and gRPC code of the ptyhost
// plugin protocol (package ptyhost.plugin.v1). Only shared's gRPC glue uses
// it; plugin authors implement shared.Environment instead.
//
// Regenerate with `go generate ./shared/proto/` (the Makefile's `make
// proto`), which needs protoc (3.21+), protoc-gen-go (v1.36.12) and
// protoc-gen-go-grpc (1.6.2) on PATH or in $(go env GOPATH)/bin.
package proto

//go:generate sh -c "PATH=\"$(go env GOPATH)/bin:$PATH\" protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative environment.proto"
