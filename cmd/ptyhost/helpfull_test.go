package main

import (
	"strings"
	"testing"
)

// A help that cannot be written (ptyhost --help > /dev/full) fails with
// exit 1 and the write's error, as version and completion do: it exited
// 0 having printed nothing.
func TestHelpOutputWriteFails(t *testing.T) {
	const want = "ptyhost: write /dev/stdout: no space left on device\n"
	for _, args := range [][]string{
		{"help"},
		{"--help"},
		{"-h"},
		{"help", "ls"},
		{"ls", "--help"},
		{"run", "-h"},
		{"serve", "--help"},
		{"env", "--help"},
		{"env", "add", "--help"},
		{"plugins", "restart", "--help"},
		{"nodes", "rm", "--help"},
		{"help", "nodes", "rm"},
		{"help", "version"},
	} {
		var errOut syncBuffer
		err := run(t.Context(), args, stdio{in: strings.NewReader(""), out: fullWriter{}, err: &errOut})
		if code := exitCode(err, &errOut); code != 1 || errOut.String() != want {
			t.Errorf("%q > /dev/full: exit %d, stderr %q; want 1, %q", args, code, errOut.String(), want)
		}
	}
}
