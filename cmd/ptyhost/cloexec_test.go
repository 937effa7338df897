package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// inheritableFD opens a file as a descriptor without close-on-exec, as a
// shell's `exec 7<file` leaves one, at a free number from 70 up, and
// returns its number; the test's end closes it.
func inheritableFD(t *testing.T) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(path, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := 70
	for ; ; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); errors.Is(err, unix.EBADF) {
			break
		}
	}
	// dup2's copy is not close-on-exec.
	if err := unix.Dup2(int(f.Fd()), fd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// childHasFD reports whether a child process started now finds fd open.
func childHasFD(t *testing.T, fd int) bool {
	t.Helper()
	err := exec.Command("/bin/sh", "-c", "test -e /dev/fd/"+strconv.Itoa(fd)).Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return err == nil
}

// TestCloseOnExecInherited: a descriptor inherited without close-on-exec
// passes to the processes started after, until closeOnExecInherited; the
// process itself keeps it open.
func TestCloseOnExecInherited(t *testing.T) {
	fd := inheritableFD(t)
	if !childHasFD(t, fd) {
		t.Fatalf("a child does not get fd %d before: the test proves nothing", fd)
	}
	if err := closeOnExecInherited(); err != nil {
		t.Fatal(err)
	}
	if childHasFD(t, fd) {
		t.Errorf("a child still gets fd %d", fd)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("fd %d is no longer open here: %v", fd, err)
	}

	// The fallback, by the list of descriptors.
	fd = inheritableFD(t)
	dir := "/dev/fd"
	if _, err := os.Stat("/proc/self/fd"); err == nil {
		dir = "/proc/self/fd"
	}
	if err := closeOnExecListed(dir); err != nil {
		t.Fatal(err)
	}
	if childHasFD(t, fd) {
		t.Errorf("a child still gets fd %d after closeOnExecListed(%s)", fd, dir)
	}
}
