package staledir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Only directories os.MkdirTemp could have made from the pattern, private,
// this user's and old enough, are candidates.
func TestCandidates(t *testing.T) {
	tmp := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * time.Minute)
	mk := func(name string, mode os.FileMode, aged bool) string {
		t.Helper()
		p := filepath.Join(tmp, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if aged {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	want := mk("x-123", 0o700, true)
	mk("x-", 0o700, true)            // no digits
	mk("x-12a", 0o700, true)         // not os.MkdirTemp's
	mk("x-tmux-test-1", 0o700, true) // a name that only starts alike
	mk("x-456", 0o755, true)         // others may enter
	mk("x-789", 0o700, false)        // too young: its maker may be at work
	if err := os.WriteFile(filepath.Join(tmp, "x-321"), nil, 0o700); err != nil {
		t.Fatal(err) // a file
	}
	if err := os.Symlink(want, filepath.Join(tmp, "x-654")); err != nil {
		t.Fatal(err) // a link to a candidate
	}
	got := Candidates(tmp, "x-*", now, time.Minute)
	if !slices.Equal(got, []string{want}) {
		t.Errorf("Candidates = %q, want only %q", got, want)
	}
}
