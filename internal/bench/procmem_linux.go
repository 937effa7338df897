package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procMem is what the bench reads about one process's footprint.
type procMem struct {
	RSS     int64 `json:"rss_bytes"` // VmRSS
	Threads int   `json:"threads"`   // OS threads
	FDs     int   `json:"fds"`       // open file descriptors
}

// readProcMem reads pid's resident set size and thread count from
// /proc/PID/status and counts /proc/PID/fd.
func readProcMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	var seen int
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch {
		case k == "VmRSS" && len(f) == 2 && f[1] == "kB":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return procMem{}, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
			}
			m.RSS = n << 10
			seen++
		case k == "Threads" && len(f) == 1:
			if m.Threads, err = strconv.Atoi(f[0]); err != nil {
				return procMem{}, fmt.Errorf("/proc/%d/status: Threads: %w", pid, err)
			}
			seen++
		}
	}
	if seen != 2 {
		return procMem{}, fmt.Errorf("/proc/%d/status: no VmRSS or Threads line", pid)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return procMem{}, err
	}
	m.FDs = len(fds)
	return m, nil
}
