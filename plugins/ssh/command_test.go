package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "'abc'"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"''", `''\'''\'''`},
		{"$HOME `id` $(id) \\ \" ;|&<>*?[]{}~#!", `'$HOME ` + "`id`" + ` $(id) \ " ;|&<>*?[]{}~#!'`},
		{"line\nbreak", "'line\nbreak'"},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// hostile are strings that would run commands, expand or split if a
// command line did not quote them right.
var hostile = []string{
	"plain",
	"with space",
	"it's",
	`a'; touch CANARY; '`,
	"$(touch CANARY)",
	"`touch CANARY`",
	"${HOME}",
	`back\slash\`,
	`"double"`,
	"semi;colon && touch CANARY || true",
	"new\nline; touch CANARY",
	"*",
	"~",
	"-n",
	"tab\there",
	"émoji 🙂",
	"",
}

// The command line survives a real POSIX shell intact: each argument
// arrives as itself, the directory is entered as named, values are
// exported as they are, and nothing runs that should not.
func TestRemoteScriptInShell(t *testing.T) {
	shells := []string{"/bin/sh", "/bin/dash", "/bin/bash"}
	for _, sh := range shells {
		if _, err := os.Stat(sh); err != nil {
			continue
		}
		t.Run(filepath.Base(sh), func(t *testing.T) {
			work := t.TempDir()
			for i, name := range hostile {
				if name == "" || name == "~" || name == "*" {
					continue
				}
				dir := filepath.Join(work, strings.ReplaceAll(name, "/", "_"))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				s := remoteScript{
					exports: map[string]string{"PTYHOST_V": name, "OTHER": "x'y"},
					dir:     dir,
					argv:    append([]string{"/bin/sh", "-c", `printf '[%s]' "$PTYHOST_V" "$OTHER" "$PWD" "$@"`, "sh"}, hostile...),
					nonce:   "n" + string(rune('a'+i)),
				}
				cmd := exec.Command(sh, "-c", s.String())
				cmd.Dir = work
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("dir %q: %v: %s", name, err, out)
				}
				want := okMarker(s.nonce, cmd.Process.Pid) + "[" + name + "][x'y][" + dir + "]"
				for _, a := range hostile {
					want += "[" + a + "]"
				}
				if string(out) != want {
					t.Errorf("dir %q:\n got %q\nwant %q", name, out, want)
				}
			}
			if _, err := os.Stat(filepath.Join(work, "CANARY")); err == nil {
				t.Error("an argument ran a command")
			}
		})
	}
}

// TestRemoteScriptUnsets: the variables to unset are gone before the
// command runs; the exported ones are set.
func TestRemoteScriptUnsets(t *testing.T) {
	s := remoteScript{
		unset:   []string{"DROP_ME", "ALSO"},
		exports: map[string]string{"KEEP": "k"},
		argv:    []string{"/bin/sh", "-c", `printf '[%s|%s|%s]' "${DROP_ME-unset}" "${ALSO-unset}" "$KEEP"`},
		nonce:   "u",
	}
	cmd := exec.Command("/bin/sh", "-c", s.String())
	cmd.Env = append(os.Environ(), "DROP_ME=1", "ALSO=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := okMarker("u", cmd.Process.Pid) + "[unset|unset|k]"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestRemoteScriptFailures(t *testing.T) {
	work := t.TempDir()
	tests := []struct {
		name   string
		script remoteScript
		mark   string
		code   int
	}{
		{"missing dir", remoteScript{dir: filepath.Join(work, "no such"), argv: []string{"true"}}, markNoDir, 1},
		{"missing command", remoteScript{argv: []string{"no-such-command-ptyhost"}}, markNoCmd, 127},
		{"missing shell", remoteScript{shell: "/no/such/shell"}, markNoCmd, 127},
		{"ok", remoteScript{dir: work, argv: []string{"true"}}, markOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.script.nonce = "x"
			out, err := exec.Command("/bin/sh", "-c", tt.script.String()).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			// The ok marker goes on with the pid; the others end.
			if !strings.Contains(string(out), "\x1b]ptyhost;"+tt.mark+";x") || code != tt.code {
				t.Errorf("got %q, status %d; want the %s marker and status %d", out, code, tt.mark, tt.code)
			}
		})
	}
}

func TestRemoteScriptShapes(t *testing.T) {
	tests := []struct {
		name   string
		script remoteScript
		want   string
	}{
		{"login shell", remoteScript{nonce: "n"}, `printf '\033]ptyhost;ok;n;%s\007' "$$"; exec "${SHELL:-/bin/sh}" -l`},
		{"configured shell", remoteScript{shell: "/bin/bash", nonce: "n"},
			`command -v -- '/bin/bash' >/dev/null 2>&1 || { printf '\033]ptyhost;nocmd;n\007'; exit 127; }; printf '\033]ptyhost;ok;n;%s\007' "$$"; exec '/bin/bash' -l`},
		{"home", remoteScript{dir: "~", nonce: "n"}, `cd -- ~ || {`},
		{"under home", remoteScript{dir: "~/src/my app", nonce: "n"}, `cd -- ~/'src/my app' || {`},
		{"exports sorted", remoteScript{exports: map[string]string{"B": "2", "A": "it's"}, nonce: "n"}, `export A='it'\''s' B='2'; `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.script.String(); !strings.Contains(got, tt.want) {
				t.Errorf("script:\n%s\nwant it to contain\n%s", got, tt.want)
			}
		})
	}
}

func TestCheckDirAndArgv(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"dir empty", checkDir("")},
		{"dir absolute", checkDir("/srv/app dir")},
		{"dir home", checkDir("~")},
		{"dir under home", checkDir("~/src")},
		{"argv empty", checkArgv(nil)},
		{"argv", checkArgv([]string{"vim", "-n", "file"})},
	} {
		if tt.err != nil {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"dir relative", checkDir("src")},
		{"dir other user's home", checkDir("~root/x")},
		{"dir NUL", checkDir("/a\x00b")},
		{"argv empty program", checkArgv([]string{""})},
		{"argv option as program", checkArgv([]string{"-c", "id"})},
		{"argv NUL", checkArgv([]string{"echo", "a\x00"})},
	} {
		if !errors.Is(tt.err, shared.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tt.name, tt.err)
		}
	}
}
