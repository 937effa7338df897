// Package proc tells whether a process runs, by its pid, on Unix systems.
package proc
