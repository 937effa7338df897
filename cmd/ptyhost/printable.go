package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text from the server — IDs, names, plugins' versions and types, error
// messages, a plugin's own error text within them — reaches the
// operator's terminal only through these: an escape sequence in it could
// otherwise move the cursor, rewrite what is on the screen, set the
// window's title or worse. Control characters (C0, DEL and C1; an invalid
// byte is already U+FFFD) become '?'. A session's output is the one
// exception: attach passes it on byte for byte, as a terminal's program
// writes it.

// cell makes text from the server safe for one table cell or one line on
// a terminal: every control character (a tab would split the cell, a
// newline the line) becomes '?', and so does every bidirectional format
// character, which would make the text read otherwise than it is (an ID
// shown reversed, a cell's text running on in the next column's place).
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if unprintable(r) {
			return '?'
		}
		return r
	}, s)
}

// unprintable reports whether r, from the server, must not reach the
// terminal as it is: a control character or a bidirectional format one.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// cellLines is cell for text of several lines: it keeps the newlines.
func cellLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = cell(l)
	}
	return strings.Join(lines, "\n")
}

// printableMessage is cell for a message of one or more lines, such as an
// error: it keeps newlines and tabs.
func printableMessage(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unprintable(r) {
			return '?'
		}
		return r
	}, s)
}

// jsonText makes JSON from the server (valid, as json.Indent found it)
// safe for a terminal without changing what it says: the controls JSON
// lets a string hold raw — DEL and C1, which xterm takes for CSI and the
// like — and the bidirectional format characters become \u escapes, and
// an invalid byte becomes \ufffd, as a decoder would read it. None can
// stand outside a string.
func jsonText(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}
