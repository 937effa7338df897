package main

import (
	"strings"
	"testing"
)

// TestHistoryFilter: in history, the queries a terminal answers are left
// out and everything else passes as it is; new output passes untouched.
func TestHistoryFilter(t *testing.T) {
	long := "\x1b]0;" + strings.Repeat("t", 5000) + "\x07"
	for _, tt := range []struct {
		name   string
		end    int64    // history ends here (output starts at 0)
		frames []string // the output, frame by frame
		want   string
	}{
		{"primary device attributes", 100, []string{"a\x1b[cb"}, "ab"},
		{"secondary and tertiary", 100, []string{"\x1b[>c\x1b[=c\x1b[>0c"}, ""},
		{"cursor position", 100, []string{"x\x1b[6ny\x1b[?6nz\x1b[5n"}, "xyz"},
		{"mode requests", 100, []string{"\x1b[?1049$p\x1b[4$p."}, "."},
		{"version, keyboard flags, modifier keys", 100, []string{"\x1b[>q\x1b[?u\x1b[?4m."}, "."},
		{"window reports, not window actions", 100, []string{"\x1b[14t\x1b[18;1t\x1b[8;24;80t"}, "\x1b[8;24;80t"},
		{"color queries, BEL or ST", 100, []string{"\x1b]11;?\x07\x1b]10;?\x1b\\\x1b]4;1;?\x07."}, "."},
		{"clipboard query, not a clipboard set", 100, []string{"\x1b]52;c;?\x07\x1b]52;c;aGk=\x07"}, "\x1b]52;c;aGk=\x07"},
		{"setting and terminfo requests", 100, []string{"\x1bP$qm\x1b\\\x1bP+q544e\x1b\\."}, "."},
		{"what is not a query passes", 100, []string{"\x1b[31mred\x1b[m\x1b[?25l\x1b]0;title\x07\x1b(B\x1b7\x1b8"},
			"\x1b[31mred\x1b[m\x1b[?25l\x1b]0;title\x07\x1b(B\x1b7\x1b8"},
		{"split between frames", 100, []string{"a\x1b", "[", "6", "n", "b\x1b]11", ";?\x1b", "\\c"}, "abc"},
		{"new output is left alone", 2, []string{"ab\x1b[c"}, "ab\x1b[c"},
		{"a query begun in history is history", 3, []string{"ab\x1b", "[cd"}, "abd"},
		{"queries after history", 3, []string{"\x1b[c", "\x1b[c"}, "\x1b[c"},
		{"a sequence cut short by another", 100, []string{"\x1b[1\x1b[c."}, "\x1b[1."},
		{"aborted by CAN", 100, []string{"\x1b[6\x18n"}, "\x1b[6\x18n"},
		{"too long for a query", 10000, []string{long}, long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f historyFilter
			f.reset(0, tt.end)
			var got []byte
			for _, fr := range tt.frames {
				got = append(got, f.filter([]byte(fr))...)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHistoryFilterReset: a reset starts history again where the replay
// after it ends, and forgets a sequence held from before.
func TestHistoryFilterReset(t *testing.T) {
	var f historyFilter
	f.reset(0, 0)
	if got := f.filter([]byte("\x1b[c")); string(got) != "\x1b[c" {
		t.Fatalf("new output: %q", got)
	}
	f.reset(100, 110)
	if got := f.filter([]byte("\x1b[6n..\x1b[")); string(got) != ".." {
		t.Errorf("history after the reset: %q, want the query dropped and the cut sequence held", got)
	}
	f.reset(200, 200)
	if got := f.filter([]byte("c")); string(got) != "c" {
		t.Errorf("after another reset, the held sequence came back: %q", got)
	}
}

// TestHistoryFilterResume: a resume exactly where the output stopped
// keeps a sequence held across the reconnect, so that its rest is not
// written as text.
func TestHistoryFilterResume(t *testing.T) {
	var f historyFilter
	f.reset(0, 10)
	// filter's result is valid until its next call: kept as a copy.
	got := append([]byte(nil), f.filter([]byte("ab\x1b[3"))...)
	f.reset(5, 10) // resumed at the offset received up to
	got = append(got, f.filter([]byte("1mc\x1b[6n"))...)
	if want := "ab\x1b[31mc"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
