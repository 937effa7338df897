package main

import (
	"strings"
	"testing"
)

func TestHasEntry(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n# a comment\n\nuser:x:1000:1000::/home/user:/bin/sh\nnocolon\n"
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"root", true}, {"user", true}, {"use", false}, {"x", false}, {"nocolon", false}, {"# a comment", false},
	} {
		got, err := hasEntry(strings.NewReader(passwd), tt.name)
		if err != nil || got != tt.want {
			t.Errorf("hasEntry(%q) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// A line longer than the limit ends the search without an error.
	long := strings.Repeat("a", accountFileLimit+1) + "\nroot:x:0:0::/:/bin/sh\n"
	if got, err := hasEntry(strings.NewReader(long), "root"); err != nil || got {
		t.Errorf("past an overlong line: %v, %v; want false, nil", got, err)
	}
}

func TestIsNumeric(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "1000": true, "": false, "user": false, "10a": false, "-1": false} {
		if got := isNumeric(s); got != want {
			t.Errorf("isNumeric(%q) = %v, want %v", s, got, want)
		}
	}
}
