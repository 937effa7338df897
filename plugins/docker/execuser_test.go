package main

import (
	"testing"
)

func TestHasEntry(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n# a comment\n\nuser:x:1000:1000::/home/user:/bin/sh\nnocolon\nlast:x:2:2::/:/bin/sh")
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"root", true}, {"user", true}, {"last", true}, {"use", false}, {"x", false}, {"nocolon", false}, {"# a comment", false},
	} {
		if got := hasEntry(passwd, tt.name); got != tt.want {
			t.Errorf("hasEntry(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsNumeric(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "1000": true, "": false, "user": false, "10a": false, "-1": false} {
		if got := isNumeric(s); got != want {
			t.Errorf("isNumeric(%q) = %v, want %v", s, got, want)
		}
	}
}
