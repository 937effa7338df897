package main

import (
	"strings"
	"unicode"
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
// newline the line) becomes '?'.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
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
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
