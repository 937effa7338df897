package api

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// decodeAll decodes chunks as one stream, then ends it.
func decodeAll(chunks ...[]byte) string {
	var d utf8Stream
	var out string
	for _, c := range chunks {
		out += d.decode(c)
	}
	return out + d.flush()
}

// TestUTF8Stream: what a browser's TextDecoder gives for the same bytes
// (the WHATWG Encoding Standard's decoder, and its examples of U+FFFD
// substitution of maximal subparts).
func TestUTF8Stream(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"ascii", "hello\r\n", "hello\r\n"},
		{"controls", "\x00\x1b[31m\x7f", "\x00\x1b[31m\x7f"},
		{"multibyte", "é€🙂", "é€🙂"},
		{"an encoded U+FFFD", "\xef\xbf\xbd", "\ufffd"},
		{"lone continuation", "a\x80b", "a\ufffdb"},
		{"invalid bytes", "\xc0\xc1\xf5\xff", "\ufffd\ufffd\ufffd\ufffd"},
		{"overlong 3-byte", "\xe0\x80\x80", "\ufffd\ufffd\ufffd"},
		{"surrogate", "\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"past U+10FFFF", "\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"},
		{"truncated 3-byte, one U+FFFD", "\xe2\x82A", "\ufffdA"},
		{"truncated 4-byte, one U+FFFD", "\xf0\x9f\x99A", "\ufffdA"},
		{"truncated at the end", "ok\xf0\x9f", "ok\ufffd"},
		{"new lead inside a sequence", "\xe2\xe2\x82\xac", "\ufffd€"},
		// The standard's own example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
		{"standard example", "\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", "a\ufffd\ufffd\ufffdb\ufffdc\ufffd\ufffdd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeAll([]byte(tt.in)); got != tt.want {
				t.Errorf("decode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Cut anywhere, the same text, and no chunk's text ends in
			// half a character.
			for cut := range len(tt.in) + 1 {
				var d utf8Stream
				a := d.decode([]byte(tt.in[:cut]))
				b := d.decode([]byte(tt.in[cut:]))
				if got := a + b + d.flush(); got != tt.want {
					t.Errorf("cut at %d: %q, want %q", cut, got, tt.want)
				}
				if !utf8.ValidString(a) {
					t.Errorf("cut at %d: first chunk's text %q is not valid UTF-8", cut, a)
				}
			}
		})
	}
}

// TestUTF8StreamChunking: random bytes, mostly UTF-8, decode to the same
// valid text however they are cut, and valid UTF-8 to itself.
func TestUTF8StreamChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "é", "€", "🙂", "\r\n", "\x1b[0m", "\x80", "\xe2", "\xf0\x9f", "\xff", "\xed\xa0"}
	for range 2000 {
		var in []byte
		valid := true
		for range rng.IntN(30) {
			p := pieces[rng.IntN(len(pieces))]
			valid = valid && utf8.ValidString(p)
			in = append(in, p...)
		}
		want := decodeAll(in)
		if !utf8.ValidString(want) || (valid && want != string(in)) {
			t.Fatalf("decode(%q) = %q", in, want)
		}
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := 1 + rng.IntN(min(len(rest), 5))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		if got := decodeAll(chunks...); got != want {
			t.Fatalf("decode(%q) in chunks %q = %q, want %q", in, chunks, got, want)
		}
	}
}
