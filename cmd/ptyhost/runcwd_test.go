package main

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// run from a deleted working directory says so, and what to do, rather
// than "getwd: no such file or directory".
func TestRunDirDeletedCwd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("getcwd of a deleted directory fails on Linux")
	}
	dir := t.TempDir() + "/gone"
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := runDir("HOST", ""); err == nil || !strings.Contains(err.Error(), "the current directory no longer exists") || !strings.Contains(err.Error(), "--cwd") {
		t.Errorf("runDir from a deleted directory: %v; want it said, with --cwd as the way out", err)
	}
	if _, err := runDir("HOST", "sub"); err == nil || !strings.Contains(err.Error(), `--cwd "sub" is relative, and the current directory no longer exists`) {
		t.Errorf("runDir(--cwd sub) from a deleted directory: %v; want it said", err)
	}
	if got, err := runDir("HOST", "/srv"); err != nil || got != "/srv" {
		t.Errorf("runDir(--cwd /srv) from a deleted directory: %q, %v", got, err)
	}
}
