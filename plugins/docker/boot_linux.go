package main

import (
	"os"
	"strings"
)

// bootID returns the kernel's boot id, random at every boot (see
// machine), or "" where it cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
