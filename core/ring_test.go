package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRingReadWriteAndEviction(t *testing.T) {
	r := newScannedRing(8)
	r.write([]byte("abcdef"))
	buf := make([]byte, 16)
	n, ok := r.Read(buf, 0)
	if !ok || string(buf[:n]) != "abcdef" {
		t.Fatalf("read = %q, %v", buf[:n], ok)
	}
	r.write([]byte("ghij")) // wraps; "ab" evicted
	if r.Start() != 2 || r.End() != 10 {
		t.Fatalf("start=%d end=%d", r.Start(), r.End())
	}
	if _, ok := r.Read(buf, 1); ok {
		t.Error("read of an evicted offset succeeded")
	}
	n, _ = r.Read(buf, 2)
	if string(buf[:n]) != "cdefghij" {
		t.Errorf("after wrap: %q", buf[:n])
	}
	n, _ = r.Read(buf[:3], 7)
	if string(buf[:n]) != "hij" {
		t.Errorf("partial: %q", buf[:n])
	}
	if n, ok := r.Read(buf, 10); n != 0 || !ok {
		t.Errorf("read at end = %d, %v", n, ok)
	}
	r.write([]byte("0123456789XYZ")) // larger than the ring
	n, _ = r.Read(buf, r.Start())
	if string(buf[:n]) != "56789XYZ" || r.End() != 23 {
		t.Errorf("oversized write kept %q, end %d", buf[:n], r.End())
	}
}

func TestReplayPointIsSafe(t *testing.T) {
	tests := []struct {
		name  string
		chunk string // repeated until the ring has wrapped
	}{
		{"plain lines", "hello world, this is a line of output\r\n"},
		{"colours", "\x1b[1;31mred\x1b[0m and \x1b[38;5;200mpink\x1b[0m text\r\n"},
		{"wide characters", "日本語のテキスト🙂🙂🙂 ünïcödé\r\n"},
		{"osc titles", "\x1b]0;a window title\x07prompt$ \r\n"},
		{"no newlines", "\x1b[2K\r🙂 progress 42% ████████░░░░ "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newScannedRing(16 << 10)
			data := strings.Repeat(tt.chunk, (64<<10)/len(tt.chunk)+1)
			// Write in odd-sized pieces so sequences straddle writes.
			for p := []byte(data); len(p) > 0; {
				n := min(len(p), 777)
				r.write(p[:n])
				p = p[n:]
			}
			sp := r.replayPoint()
			if sp.off < r.Start() || sp.off >= r.End() {
				t.Fatalf("replay point %d outside [%d,%d)", sp.off, r.Start(), r.End())
			}
			// The replay must begin exactly where a chunk begins or at a
			// point a fresh parser agrees is safe: check it parses clean.
			var b boundary
			b.modes = defaultModes
			full := []byte(data)
			prefix := full[:sp.off]
			for _, c := range prefix {
				b.step(c)
			}
			if !b.safe() {
				t.Errorf("offset %d is inside a sequence (state %d, utf8 %d)", sp.off, b.state, b.utf8Need)
			}
		})
	}
}

func TestModesPreamble(t *testing.T) {
	r := newScannedRing(4 << 10)
	r.write([]byte("\x1b[?1049h\x1b[?25l\x1b[?2004h"))
	for range 200 {
		r.write([]byte("a full-screen app redraws a line\r\n"))
	}
	sp := r.replayPoint()
	if sp.off == 0 {
		t.Fatal("ring did not wrap")
	}
	got := string(sp.modes.preamble())
	for _, want := range []string{"\x1b[?25l", "\x1b[?1049h", "\x1b[?2004h"} {
		if !strings.Contains(got, want) {
			t.Errorf("preamble %q lacks %q", got, want)
		}
	}
	r.write([]byte("\x1b[?1049l\x1b[?25h\x1b[?2004l"))
	for range 200 {
		r.write([]byte("back on the main screen\r\n"))
	}
	if p := r.replayPoint().modes.preamble(); p != nil {
		t.Errorf("default modes gave preamble %q", p)
	}
}

func TestBoundaryParser(t *testing.T) {
	tests := []struct {
		in   string
		safe bool
	}{
		{"abc", true},
		{"\x1b", false},
		{"\x1b[", false},
		{"\x1b[31", false},
		{"\x1b[31m", true},
		{"\x1b]0;title", false},
		{"\x1b]0;title\x07", true},
		{"\x1b]0;title\x1b\\", true},
		{"\x1bP1$r", false},
		{"\x1b(B", true},
		{"\x1b(", false},
		{"\xf0\x9f", false},
		{"\xf0\x9f\x99\x82", true},
		{"\xe6\x97", false},
		{"\xe6\x97\xa5", true},
		{"\x1b[31\x18", true}, // CAN aborts
	}
	for _, tt := range tests {
		var b boundary
		for _, c := range []byte(tt.in) {
			b.step(c)
		}
		if b.safe() != tt.safe {
			t.Errorf("%q: safe = %v, want %v", tt.in, b.safe(), tt.safe)
		}
	}
}

func BenchmarkRingWrite(b *testing.B) {
	r := newScannedRing(DefaultScrollbackBytes)
	chunk := bytes.Repeat([]byte("\x1b[32mgreen\x1b[0m text 🙂\r\n"), 2000)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		r.write(chunk)
	}
}

// referenceSafePoints is the plain byte-by-byte definition of safe points
// that ring.track implements with a fast path for text.
func referenceSafePoints(data []byte) ([]safePoint, boundary) {
	var b boundary
	b.modes = defaultModes
	var out []safePoint
	var last int64
	for i, c := range data {
		b.step(c)
		off := int64(i) + 1
		gap := off - last
		if gap < minSafeGap || !b.safe() {
			continue
		}
		if c == '\n' || gap >= maxSafeGap {
			out = append(out, safePoint{off: off, modes: b.modes})
			last = off
		}
	}
	return out, b
}

func TestTrackMatchesByteByByteParser(t *testing.T) {
	pieces := []string{
		"plain text ", "more words\r\n", "\n", "\x1b[1;31m", "\x1b[0m", "\x1b[?1049h", "\x1b[?1049l",
		"\x1b[?25l", "\x1b[?2004h", "\x1b]0;title\x07", "\x1b]8;;http://x\x1b\\", "🙂", "日本",
		"ünï", "\x1b(B", "\xf0\x9f", "\x99\x82", "\x80\x80", strings.Repeat("long line ", 300),
		strings.Repeat("é", 2000), "\x1bP+q\x1b\\", "\x1b[", "31m",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var data []byte
		for len(data) < 64<<10 {
			data = append(data, pieces[rng.IntN(len(pieces))]...)
		}
		want, wantParser := referenceSafePoints(data)
		r := newScannedRing(1 << 20) // large enough to keep every safe point
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(5000))
			r.write(p[:n])
			p = p[n:]
		}
		if !slices.Equal(r.safe, want) {
			t.Fatalf("round %d: %d safe points, want %d; first difference at %d", round, len(r.safe), len(want), firstDiff(r.safe, want))
		}
		if p := r.scanner.parser; p.state != wantParser.state || p.utf8Need != wantParser.utf8Need || p.modes != wantParser.modes {
			t.Fatalf("round %d: parser %+v, want %+v", round, p, wantParser)
		}
	}
}

func firstDiff(a, b []safePoint) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkScanLines scans pump-sized reads of short lines without
// escapes, the output of most programs: the escape search must not start
// again from every line.
func BenchmarkScanLines(b *testing.B) {
	p := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), (64<<10)/37)
	sc := newScanner(DefaultScrollbackBytes)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sc.scan(p)
	}
}

// BenchmarkScanColoured scans pump-sized reads of lines where one word in
// six is coloured (an SGR before, a reset after) and some are multibyte,
// as the bench's generator writes: escapes every few dozen bytes.
func BenchmarkScanColoured(b *testing.B) {
	words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "é", "→", "日本語"}
	sgr := []string{"\x1b[1m", "\x1b[31m", "\x1b[1;34m", "\x1b[38;5;208m"}
	var p []byte
	for i := 0; len(p) < 64<<10; i++ {
		if i%6 == 0 {
			p = append(p, sgr[i%len(sgr)]...)
		}
		p = append(p, words[i%len(words)]...)
		if i%6 == 0 {
			p = append(p, "\x1b[0m"...)
		}
		if i%9 == 8 {
			p = append(p, "\r\n"...)
		} else {
			p = append(p, ' ')
		}
	}
	sc := newScanner(DefaultScrollbackBytes)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sc.scan(p)
	}
}

// A full-screen program (cursor moves and colours, no newline) on a server
// with a scrollback smaller than maxSafeGap: once the ring has wrapped, it
// still holds a safe point near its start, and a new client gets most of
// it, where with safe points maxSafeGap apart it often got nothing.
func TestSmallRingReplaysAScreen(t *testing.T) {
	const capacity = 8 << 10
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = capacity })
	_, p := h.create(t, "tui")
	var out []byte
	for i := 0; len(out) < 40<<10; i++ {
		out = fmt.Appendf(out, "\x1b[%d;1H\x1b[32mrow %05d status ok......................................\x1b[0m", i%24+1, i)
	}
	p.Output(t, out)
	eventually(t, "the output in the ring", func() bool { return ringEnd(h, "tui") == int64(len(out)) })
	hl := h.attach(t, "tui").Hello()
	if hl.End != int64(len(out)) || hl.End-hl.Offset < capacity/2 {
		t.Errorf("replay [%d,%d) of %d bytes, want at least half the ring of %d", hl.Offset, hl.End, len(out), capacity)
	}
}
