//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64))

package main

// wrapMain has no wrapper mode here: the tests that use it are Linux-only.
func wrapMain() {}
