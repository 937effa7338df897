package main

import (
	"strings"
	"testing"
)

// TestServeHelp: serve's help is printed as every command's is, to
// stdout, with --flag names, argument names and the defaults as a person
// writes them.
func TestServeHelp(t *testing.T) {
	code, stdout, stderr := runCmd(t, "serve", "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"Usage: ptyhost serve [flags]\n",
		"\nFlags:\n",
		"\n  --scrollback SIZE\n",
		`(default "256KiB")`,
		"\n  --log-level LEVEL\n",
		`(default "info")`,
		`(default "text")`,
		"\n  --linger DURATION\n",
		`(default "5m")`,
		`(default "10m")`,
		`(default "10s")`,
		"\n  --listen ADDRESS\n",
		"\n  --hang-up-on-stop\n",
		"\n  -h, --help\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, stdout)
		}
	}
	for _, bad := range []string{"\n  -scrollback", "262144)", "INFO", "5m0s", " value\n"} {
		if strings.Contains(stdout, bad) {
			t.Errorf("serve --help has %q", bad)
		}
	}
	code, stdout, stderr = runCmd(t, "serve", "--bogus")
	if want := "ptyhost: serve: flag provided but not defined: -bogus (see 'ptyhost serve --help')\n"; code != 2 || stdout != "" || stderr != want {
		t.Errorf("serve --bogus: exit %d, stdout %q, stderr %q; want 2, %q", code, stdout, stderr, want)
	}
}
