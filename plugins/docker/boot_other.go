//go:build !linux && !darwin

package main

// bootID returns "": this system has no boot id the plugin reads, so no
// owner is provably this machine's and the orphan sweep removes nothing
// (see machine).
func bootID() string { return "" }
