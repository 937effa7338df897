package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// A client command's boolean flag given a bad value says what it wants,
// as serve's do, not the flag package's "parse error".
func TestClientBoolFlagsSayWhatTheyWant(t *testing.T) {
	for _, args := range [][]string{
		{"stop", "--hang-up=maybe"},
		{"ls", "-a=2"},
		{"ls", "--all=x"},
		{"ls", "-q=x"},
		{"ls", "--json=x"},
		{"attach", "--read-only=x", "s1"},
		{"run", "--keep=x", "--", "true"},
		{"env", "ls", "--json=x"},
		{"env", "show", "--json=x", "host"},
		{"env", "health", "--json=x"},
		{"plugins", "--json=x"},
		{"nodes", "--json=x"},
	} {
		err := run(context.Background(), args, stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "want true or false") || strings.Contains(err.Error(), "parse error") {
			t.Errorf("%q: %v; want a usage error saying want true or false", args, err)
		}
	}
}

// 'ptyhost help COMMAND' prints the command's help, as COMMAND --help
// does; 'ptyhost help' alone, the general usage.
func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"ls"}, {"env", "add"}, {"plugins", "restart"}, {"nodes", "rm"}, {"serve"}} {
		var want, got strings.Builder
		if err := run(context.Background(), append(append([]string{}, args...), "--help"), stdio{in: strings.NewReader(""), out: &want, err: io.Discard}); err != nil {
			t.Fatalf("%q --help: %v", args, err)
		}
		if err := run(context.Background(), append([]string{"help"}, args...), stdio{in: strings.NewReader(""), out: &got, err: io.Discard}); err != nil || got.String() != want.String() {
			t.Errorf("help %q: %v, %.60q; want %q --help's %.60q", args, err, got.String(), args, want.String())
		}
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"help"}, stdio{out: &out, err: io.Discard}); err != nil || out.String() != usage {
		t.Errorf("help: %v, %.60q; want the usage", err, out.String())
	}
	// Words after the command are not passed on: 'help run echo hi' ran
	// echo hi in a session (run takes its flags up to the command).
	for _, args := range [][]string{{"run", "--server", "127.0.0.1:1", "echo", "hi"}, {"ls", "extra"}, {"env", "add", "x"}} {
		var out strings.Builder
		err := run(context.Background(), append([]string{"help"}, args...), stdio{in: strings.NewReader(""), out: &out, err: io.Discard})
		var ue usageError
		if !errors.As(err, &ue) || out.Len() != 0 {
			t.Errorf("help %q: %v, printed %.60q; want a usage error", args, err, out.String())
		}
	}
}

// helpOf returns what 'ptyhost ARGS... --help' prints.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out strings.Builder
	if err := run(context.Background(), append(args, "--help"), stdio{in: strings.NewReader(""), out: &out, err: io.Discard}); err != nil {
		t.Fatalf("%q --help: %v", args, err)
	}
	return out.String()
}

// The help and the README say what the commands do: 'plugins ls' is
// named, --data-dir holds the sockets and recordings too, ls's idiom for
// scripts kills nothing (rather than exiting 2) when nothing matches, and
// the README's list of client commands taking --server and --token has
// every one that does.
func TestHelpAndReadmeAgree(t *testing.T) {
	if h := helpOf(t, "plugins"); !strings.Contains(h, "Usage: ptyhost plugins [ls] [flags]") {
		t.Errorf("plugins --help does not name 'plugins ls':\n%s", h)
	}
	if !strings.Contains(usage, "ptyhost plugins [ls|restart NAME]") {
		t.Errorf("the usage does not name 'plugins ls':\n%s", usage)
	}
	// Flag descriptions are wrapped: compared with their spaces collapsed.
	if h := helpOf(t, "serve"); !strings.Contains(strings.Join(strings.Fields(h), " "), "the plugins' sockets (run/) and the recordings (recordings/)") {
		t.Errorf("serve --help's --data-dir does not say it holds the sockets and the recordings:\n%s", h)
	}
	if h := helpOf(t, "ls"); strings.Contains(h, "$(ptyhost ls") || !strings.Contains(h, "xargs -r ptyhost kill") {
		t.Errorf("ls --help's idiom for scripts exits 2 when nothing matches:\n%s", h)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, list, _ := strings.Cut(string(readme), "The client commands (")
	list, _, _ = strings.Cut(list, ")")
	for _, cmd := range []string{"run", "attach", "ls", "kill", "prune", "restart", "rec", "env", "plugins", "nodes", "stop", "serve", "version", "completion"} {
		args := []string{cmd}
		if cmd == "env" {
			args = append(args, "ls")
		}
		takes := strings.Contains(helpOf(t, args...), "-server")
		if listed := strings.Contains(list, "`"+cmd+"`"); takes != listed {
			t.Errorf("%s takes --server: %v; the README's list of client commands (%s) has it: %v", cmd, takes, list, listed)
		}
	}
}

// The usage's descriptions start in one column (but after a command too
// long for it), and a command that takes several IDs says so (ID...), as
// its own --help does.
func TestUsageAligned(t *testing.T) {
	const column = 40 // where a description starts, from 0
	for line := range strings.Lines(usage) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		cmd, desc, ok := strings.Cut(line[2:], "  ")
		if !ok {
			continue // a command alone; its description is on the next line
		}
		start := len(line) - len(strings.TrimLeft(desc, " "))
		fits := 2+len(cmd)+2 <= column // the command leaves room before the column
		if start != column && (cmd == "" || fits) {
			t.Errorf("description at column %d, not %d: %q", start+1, column+1, line)
		}
	}
	for _, cmd := range []string{"kill", "restart"} {
		if h := helpOf(t, cmd); !strings.Contains(h, "ptyhost "+cmd+" [flags] ID...") || !strings.Contains(usage, "ptyhost "+cmd+" ID...") {
			t.Errorf("%s takes several IDs; the usage or its --help does not say so:\n%s", cmd, usage)
		}
	}
}
