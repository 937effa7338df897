package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// The working-directory roots come from --workdir-root (repeatable), else
// PTYHOST_WORKDIR_ROOTS (a path list), else the file's workdir_roots; none
// means unrestricted.
func TestWorkdirRootsSetting(t *testing.T) {
	file := writeConfig(t, "workdir_roots = [\"/from/file\", \"/also/file\"]\n")
	tests := []struct {
		name string
		args []string
		env  string // PTYHOST_WORKDIR_ROOTS; "-" leaves it unset
		want []string
	}{
		{"default", nil, "-", nil},
		{"flags", []string{"--workdir-root", "/a", "--workdir-root", "/b/"}, "-", []string{"/a", "/b/"}},
		{"variable", nil, "/x:/y::/z", []string{"/x", "/y", "/z"}},
		{"empty variable", nil, "", nil},
		{"file", []string{"--config", file}, "-", []string{"/from/file", "/also/file"}},
		{"variable over file", []string{"--config", file}, "/x", []string{"/x"}},
		{"flag over variable and file", []string{"--config", file, "--workdir-root", "/a"}, "/x", []string{"/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			if tt.env != "-" {
				t.Setenv(workdirRootsEnv, tt.env)
			}
			c, err := parseServeFlags(tt.args, stdio{out: io.Discard, err: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.workdirRoots, tt.want) {
				t.Errorf("workdir roots %q, want %q", c.workdirRoots, tt.want)
			}
		})
	}
}

func TestWorkdirRootsInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"relative flag", []string{"--workdir-root", "src"}, "-", `--workdir-root: working-directory root "src" is not an absolute path`},
		{"dot-dot flag", []string{"--workdir-root", "/srv/../etc"}, "-", `".." element`},
		{"relative in variable", nil, "/ok:rel", `PTYHOST_WORKDIR_ROOTS: working-directory root "rel" is not an absolute path`},
		{"relative in file", []string{"--config", writeConfig(t, "\nworkdir_roots = [\"rel\"]\n")}, "-", `:2,17: Invalid workdir_roots; working-directory root "rel" is not an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			if tt.env != "-" {
				t.Setenv(workdirRootsEnv, tt.env)
			}
			code, stdout, stderr := runCmd(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, tt.args...)...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and a message with %q", code, stdout, stderr, tt.want)
			}
		})
	}
}
