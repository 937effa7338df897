package shared

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkingDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct {
		name, dir, want, err string
	}{
		{name: "empty means home", dir: "", want: home},
		{name: "a directory", dir: dir, want: dir},
		{name: "relative", dir: "sub", err: `working directory "sub" is not an absolute path`},
		{name: "missing", dir: filepath.Join(dir, "nope"), err: "does not exist"},
		{name: "a file", dir: file, err: "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WorkingDir(tt.dir)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("WorkingDir(%q) = %q, %v; want %q", tt.dir, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("WorkingDir(%q) = %q, %v; want ErrInvalidArgument saying %q", tt.dir, got, err, tt.err)
			}
		})
	}
}
