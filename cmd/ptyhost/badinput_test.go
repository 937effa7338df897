package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// A server whose session list never ends — a cursor handed out again, or
// a new one on every page — makes ls fail with a clear error, not page on
// until it runs out of memory.
func TestLsEndlessPages(t *testing.T) {
	// 10,000 pages took 3 s under the race detector, and more than the
	// command's 10 s beside the other packages' tests on a loaded
	// machine; the bound works the same at 100.
	defer func(n int) { maxListPages = n }(maxListPages)
	maxListPages = 100
	for _, tt := range []struct {
		name   string
		cursor func(i int64) string
	}{
		{"a new cursor every page", func(i int64) string { return fmt.Sprintf("c%d", i) }},
		{"the same cursor again", func(i int64) string { return fmt.Sprintf("c%d", i%2) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := n.Add(1)
				fmt.Fprintf(w, `{"sessions":[{"id":"s%d","status":"ACTIVE"}],"next_cursor":%q}`, i, tt.cursor(i))
			}))
			defer srv.Close()
			code, _, stderr := runCmd(t, "ls", "--server", srv.URL)
			if code != 1 || !strings.Contains(stderr, "does not end") {
				t.Errorf("ls: exit %d after %d requests, stderr %q; want 1 and a list that does not end", code, n.Load(), stderr)
			}
			if n.Load() > int64(maxListPages)+1 {
				t.Errorf("%d requests, more than %d pages", n.Load(), maxListPages)
			}
		})
	}
}

// PTYHOST_WORKDIR_ROOTS of separators alone is refused: it would lift the
// file's restriction to no root at all.
func TestWorkdirRootsSeparatorsOnly(t *testing.T) {
	clearServeEnv(t)
	file := writeConfig(t, "workdir_roots = [\"/srv\"]\n")
	t.Setenv(workdirRootsEnv, "::")
	_, err := parseServeFlags([]string{"--config", file}, stdio{out: io.Discard, err: io.Discard})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "lists no directory") {
		t.Fatalf("PTYHOST_WORKDIR_ROOTS=\"::\": %v; want a usage error", err)
	}
}

// PTYHOST_PLUGIN_LOG_LEVEL that names no level is a usage error naming
// the variable and the value; a level in any case passes, and empty is
// unset.
func TestPluginLogLevelChecked(t *testing.T) {
	for _, tt := range []struct{ value, want string }{
		{"bogus", `PTYHOST_PLUGIN_LOG_LEVEL: "bogus" is not a log level: want trace, debug, info, warn, error or off`},
		{"warning", `"warning" is not a log level`},
		{"DEBUG", ""},
		{"off", ""},
		{"", ""},
	} {
		clearServeEnv(t)
		t.Setenv(shared.LogLevelEnv, tt.value)
		_, err := parseServeFlags([]string{"--data-dir", t.TempDir()}, stdio{out: io.Discard, err: io.Discard})
		var ue usageError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.value, err)
		case tt.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v; want a usage error saying %s", tt.value, err, tt.want)
		}
	}
}

// never_env in the file: an empty list is no names; each entry is one
// name, checked on its own.
func TestNeverEnvList(t *testing.T) {
	for _, tt := range []struct {
		file, want string // want: the error, "" for none
		names      []string
	}{
		{"never_env = []\n", "", nil},
		{"never_env = [\"A\", \"B_2\"]\n", "", []string{"A", "B_2"}},
		{"never_env = [\"A,B\"]\n", `"A,B": want a variable name`, nil},
		{"never_env = [\"A\", \"\"]\n", `"": want a variable name`, nil},
	} {
		clearServeEnv(t)
		c, err := parseServeFlags([]string{"--config", writeConfig(t, tt.file)}, stdio{out: io.Discard, err: io.Discard})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.file, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v; want an error saying %s", tt.file, err, tt.want)
		case tt.want == "" && fmt.Sprint(c.neverEnv) != fmt.Sprint(tt.names):
			t.Errorf("%s: names %q, want %q", tt.file, c.neverEnv, tt.names)
		}
	}
}

// A token no request can carry as it is (a CR from a CRLF file, a space)
// is refused by serve and by the client commands, with a usage error that
// does not show it; the client used to blame the network.
func TestTokenCharacters(t *testing.T) {
	const secret = "0123456789abcdef0123"
	for _, bad := range []string{secret + "\r", secret + " ", " " + secret, "0123456789\tabcdef", secret + "\x7f"} {
		clearServeEnv(t)
		t.Setenv("PTYHOST_TOKEN", bad)
		_, err := parseServeFlags(nil, stdio{out: io.Discard, err: io.Discard})
		var ue usageError
		if !errors.As(err, &ue) || strings.Contains(err.Error(), "0123456789") {
			t.Errorf("serve with token %q: %v; want a usage error that does not show the token", bad, err)
		}
	}
	for _, good := range []string{"0123456789abcdef 0123", "pässwört-0123456789"} {
		clearServeEnv(t)
		t.Setenv("PTYHOST_TOKEN", good)
		if _, err := parseServeFlags(nil, stdio{out: io.Discard, err: io.Discard}); err != nil {
			t.Errorf("serve with token %q: %v", good, err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	code, _, stderr := runCmd(t, "ls", "--server", srv.URL, "--token", secret+"\r")
	if code != 2 || strings.Contains(stderr, "cannot reach") || strings.Contains(stderr, "0123456789") || !strings.Contains(stderr, "carriage return") {
		t.Errorf("ls with a CR in the token: exit %d, stderr %q; want 2 and the token's fault, without the token", code, stderr)
	}
}

// An empty --data-dir or --plugin-dir (flag, variable or file) is refused:
// it meant the working directory, or no plugins at all.
func TestEmptyDirectories(t *testing.T) {
	for _, args := range [][]string{{"--data-dir="}, {"--plugin-dir="}} {
		clearServeEnv(t)
		if _, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard}); !errors.As(err, new(usageError)) {
			t.Errorf("%s: %v, want a usage error", args[0], err)
		}
	}
	clearServeEnv(t)
	t.Setenv("PTYHOST_DATA_DIR", "")
	if _, err := parseServeFlags([]string{"--config", writeConfig(t, "data_dir = \"\"\n")}, stdio{out: io.Discard, err: io.Discard}); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf(`data_dir = "": %v, want an error naming it`, err)
	}
}

// A listen port out of range, or a DSN of another kind, is a usage error
// before anything starts, not a failure later with exit status 1.
func TestListenPortAndDB(t *testing.T) {
	for _, l := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:http-alt-x", "127.0.0.1:"} {
		clearServeEnv(t)
		_, err := parseServeFlags([]string{"--listen", l}, stdio{out: io.Discard, err: io.Discard})
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "port") {
			t.Errorf("--listen %s: %v, want a usage error about the port", l, err)
		}
	}
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.1:7420", "[::1]:7420", "localhost:0", "localhost:http"} {
		clearServeEnv(t)
		if _, err := parseServeFlags([]string{"--listen", ok}, stdio{out: io.Discard, err: io.Discard}); err != nil {
			t.Errorf("--listen %s: %v", ok, err)
		}
	}
	clearServeEnv(t)
	if _, err := parseServeFlags([]string{"--db", "mysql://x"}, stdio{out: io.Discard, err: io.Discard}); !errors.As(err, new(usageError)) {
		t.Errorf("--db mysql://x: %v, want a usage error", err)
	}
	clearServeEnv(t)
	if _, err := parseServeFlags([]string{"--config", writeConfig(t, "db = \"mysql://x\"\n")}, stdio{out: io.Discard, err: io.Discard}); err == nil || !strings.Contains(err.Error(), "db") {
		t.Errorf(`db = "mysql://x": %v, want an error naming it`, err)
	}
}

// --reconnect and stop's --wait take a duration of 0 or more, and say so.
func TestWaitFlags(t *testing.T) {
	for _, args := range [][]string{
		{"attach", "--reconnect", "-1s", "s1"},
		{"attach", "--reconnect", "5", "s1"},
		{"run", "--reconnect", "-5m", "--", "true"},
		{"stop", "--wait", "-1s"},
	} {
		code, _, stderr := runCmd(t, args...)
		if code != 2 || !strings.Contains(stderr, "want a duration of 0 or more") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and what it wants", args, code, stderr)
		}
	}
}

// A reset at a negative offset ends attach at once as the server's fault:
// resuming at that offset would not mend it.
func TestResetBadOffsetIsFinal(t *testing.T) {
	err := fmt.Errorf("%w: reset to offset %d", wsproto.ErrBadOffset, -100)
	if r := closeResult(err, nil); r.retry || !errors.Is(r.err, wsproto.ErrBadOffset) {
		t.Errorf("closeResult: retry %v, err %v; want no retry and the protocol error", r.retry, r.err)
	}
}

// A page may be empty and still have a next one (a status filter drops
// what the store returned): ls follows it.
func TestLsFollowsEmptyPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			fmt.Fprint(w, `{"sessions":[],"next_cursor":"p2"}`)
			return
		}
		fmt.Fprint(w, `{"sessions":[{"id":"ended1","status":"TERMINATED"}]}`)
	}))
	defer srv.Close()
	code, stdout, stderr := runCmd(t, "ls", "-a", "--server", srv.URL)
	if code != 0 || !strings.Contains(stdout, "ended1") {
		t.Errorf("ls: exit %d, stdout %q, stderr %q; want the session of the second page", code, stdout, stderr)
	}
}
