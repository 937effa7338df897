package main

import "golang.org/x/sys/unix"

// bootID returns the boot session's UUID, new at every boot (see
// machine), or "" where it cannot be read.
func bootID() string {
	id, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return ""
	}
	return id
}
