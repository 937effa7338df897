package main

import (
	"context"
	"errors"
	"io"
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
	for _, args := range [][]string{{"run"}, {"ls"}, {"env", "add"}, {"plugins", "restart"}, {"serve"}} {
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
}
