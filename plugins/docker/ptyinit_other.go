//go:build !linux

package main

import (
	"fmt"
	"os"
)

// runPTYInit runs only in containers, which run Linux (see direct.go).
func runPTYInit([]string) int {
	fmt.Fprintln(os.Stderr, "ptyhost pty-init: runs in Linux containers only")
	return 125
}
