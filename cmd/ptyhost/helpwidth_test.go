package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Every command's help, and the usage, fits an 80-column terminal: flag
// descriptions are wrapped, a default kept whole on its line.
func TestHelpFitsEightyColumns(t *testing.T) {
	check := func(name, text string) {
		t.Helper()
		for i, line := range strings.Split(text, "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("%s, line %d: %d columns: %q", name, i+1, n, line)
			}
		}
	}
	check("usage", usage)
	eachHelp(t, func(path, text string) {
		check(path+" --help", text)
		if path == "serve" && !strings.Contains(text, "\n      [PTYHOST_HANG_UP_ON_STOP]\n") {
			t.Errorf("serve --help: the --hang-up-on-stop description not wrapped as expected:\n%s", text)
		}
	})
}

// eachHelp calls f with each command's path and what its --help prints.
func eachHelp(t *testing.T, f func(path, text string)) {
	t.Helper()
	for _, path := range append([]string{"serve", "version", "completion"}, completionCommands...) {
		var out strings.Builder
		args := append(strings.Fields(path), "--help")
		if err := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: io.Discard}); err != nil {
			t.Fatalf("%s --help: %v", path, err)
		}
		f(path, out.String())
	}
}

// Completion reads a flag's whole description, however the help wraps it.
func TestCompletionReadsWrappedDescriptions(t *testing.T) {
	cmds := completionSpec(t.Context())
	i := slices.IndexFunc(cmds, func(c complCommand) bool { return c.path == "serve" })
	if i < 0 {
		t.Fatal("no serve in the completion spec")
	}
	j := slices.IndexFunc(cmds[i].flags, func(f complFlag) bool { return f.name == "hang-up-on-stop" })
	if j < 0 {
		t.Fatal("serve has no --hang-up-on-stop")
	}
	want := "hang every session up when the server stops (SIGTERM, SIGINT, 'ptyhost stop'), instead of leaving them running for the next server [PTYHOST_HANG_UP_ON_STOP]"
	if got := cmds[i].flags[j].help; got != want {
		t.Errorf("--hang-up-on-stop's description: %q, want %q", got, want)
	}
}
