package shared

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckUnderRoots(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	inside := filepath.Join(root, "proj")
	outside := filepath.Join(base, "other")
	for _, d := range []string{inside, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link inside the root that leads out of it, and a root that is
	// itself a link.
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	linkRoot := filepath.Join(base, "linkroot")
	if err := os.Symlink(root, linkRoot); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		roots   []string
		path    string
		resolve bool
		want    string
		wantErr error
	}{
		{"no roots", nil, "~/x", false, "~/x", nil},
		{"no roots, NUL", nil, "/a\x00", false, "", ErrInvalidArgument},
		{"the root", []string{root}, root, true, root, nil},
		{"inside", []string{root}, inside + "/", true, inside, nil},
		{"inside, second root", []string{outside, root}, inside, true, inside, nil},
		{"outside", []string{root}, outside, true, "", ErrPermissionDenied},
		{"prefix is not a parent", []string{root}, root + "x", false, "", ErrPermissionDenied},
		{"dot-dot", []string{root}, inside + "/../../other", false, "", ErrPermissionDenied},
		{"dot-dot staying inside", []string{root}, inside + "/../proj", true, "", ErrPermissionDenied},
		{"relative", []string{root}, "proj", false, "", ErrPermissionDenied},
		{"tilde", []string{root}, "~/proj", false, "", ErrPermissionDenied},
		{"link out of the root, resolved", []string{root}, filepath.Join(root, "escape"), true, "", ErrPermissionDenied},
		{"link out of the root, lexical", []string{root}, filepath.Join(root, "escape"), false, filepath.Join(root, "escape"), nil},
		{"root is a link", []string{linkRoot}, filepath.Join(linkRoot, "proj"), true, inside, nil},
		{"root is a link, real path given", []string{linkRoot}, inside, true, inside, nil},
		{"missing, resolved", []string{root}, filepath.Join(root, "missing"), true, "", ErrInvalidArgument},
		{"missing, lexical", []string{root}, filepath.Join(root, "missing"), false, filepath.Join(root, "missing"), nil},
		{"slash root", []string{"/"}, outside, true, outside, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckUnderRoots(tt.roots, tt.path, tt.resolve)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("CheckUnderRoots(%q) = %q, %v; want an error wrapping %v", tt.path, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CheckUnderRoots(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestCheckRoots(t *testing.T) {
	for _, ok := range [][]string{nil, {"/"}, {"/srv/work", "/home"}} {
		if err := CheckRoots(ok); err != nil {
			t.Errorf("CheckRoots(%q) = %v", ok, err)
		}
	}
	for _, bad := range [][]string{{""}, {"rel"}, {"/a/../b"}, {"/a\x00"}} {
		if err := CheckRoots(bad); err == nil {
			t.Errorf("CheckRoots(%q) = nil, want an error", bad)
		}
	}
}
