package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The prose of every command's help is filled: a line of a paragraph
// ends short only where the next word would not fit. A line broken in
// the middle of a sentence, as attach's "attach prints "[...;" once was,
// reads as a mistake in an 80-column terminal.
func TestHelpProseFilled(t *testing.T) {
	const fill = 60 // the shortest width a filled line may leave
	check := func(name, text string) {
		t.Helper()
		lines := strings.Split(text, "\n")
		for i := 0; i+1 < len(lines); i++ {
			line, next := lines[i], lines[i+1]
			if prose := func(l string) bool { return l != "" && l[0] != ' ' && !strings.HasSuffix(l, ":") }; !prose(line) || !prose(next) {
				continue
			}
			word, _, _ := strings.Cut(next, " ")
			if utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= fill {
				t.Errorf("%s, line %d ends short before %q: %q", name, i+1, word, line)
			}
		}
	}
	eachHelp(t, func(path, text string) { check(path+" --help", text) })
}
