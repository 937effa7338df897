package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// longToken is a token long enough for serve (minTokenBytes).
const longToken = "serve-limits-token-4b1d"

// TestServeClosesIdleConnections: a keep-alive connection that sends no
// second request is closed after the server's idle timeout, so that
// idle connections cannot pile up until the server runs out of file
// descriptors.
func TestServeClosesIdleConnections(t *testing.T) {
	const idle = 200 * time.Millisecond
	srv := e2etest.Start(t, e2etest.Options{Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		io := stdio{in: strings.NewReader(""), out: stdout, err: stderr}
		c, err := parseServeFlags(args[1:], io) // args[0] is "serve"
		if err != nil {
			return err
		}
		c.connIdleTimeout = idle
		return serve(ctx, c, io)
	}})
	host := strings.TrimPrefix(srv.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %s, close %v; want 200 on a connection kept alive", resp.Status, resp.Close)
	}

	// No lower bound on when: on a loaded machine this goroutine may
	// come here after the timeout has run.
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the idle connection: read %d bytes, %v; want it closed by the server (EOF)", n, err)
	}
}

// TestServeLogHidesDSNPassword: the "ptyhost serving" line shows the
// database without a password given in the DSN's query.
func TestServeLogHidesDSNPassword(t *testing.T) {
	clearServeEnv(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ptyhost.db") + "?password=Qu3ryS3cret"
	srv := e2etest.Start(t, e2etest.Options{Run: runServer, LogLevel: "info", WaitLog: true, Args: []string{"--db", dsn}})
	log := srv.Stderr()
	if !strings.Contains(log, "password=xxxxx") || strings.Contains(log, "Qu3ryS3cret") {
		t.Errorf("the log shows the DSN's password, or no DSN:\n%s", log)
	}
}

// TestServeNonASCIITokenWarning: a token the browser page cannot send
// (beyond ASCII) is warned about while the page is served, without its
// value; an ASCII one, or one with the page off, is not.
func TestServeNonASCIITokenWarning(t *testing.T) {
	const warning = "has characters beyond ASCII"
	clearViewerEnv(t)
	const token = "pässwört-" + longToken
	t.Setenv("PTYHOST_TOKEN", token)
	srv := e2etest.Start(t, e2etest.Options{Run: runServer})
	if log := srv.Stderr(); !strings.Contains(log, warning) || strings.Contains(log, token) {
		t.Errorf("with a token beyond ASCII, the log lacks the warning or shows the token:\n%s", log)
	}
	srv = e2etest.Start(t, e2etest.Options{Run: runServer, Args: []string{"--web=false"}})
	if log := srv.Stderr(); strings.Contains(log, warning) {
		t.Errorf("with the page off, the log warns of it:\n%s", log)
	}
	t.Setenv("PTYHOST_TOKEN", longToken)
	srv = e2etest.Start(t, e2etest.Options{Run: runServer})
	if log := srv.Stderr(); strings.Contains(log, warning) {
		t.Errorf("with an ASCII token, the log warns of it:\n%s", log)
	}
}

// TestServeTokenFlagWarning: a token given as a flag, which every local
// user reads in the process list, is warned about (without its value);
// one from the variable is not. The flags' help says so too.
func TestServeTokenFlagWarning(t *testing.T) {
	const warning = "a secret given as a flag shows in the process list"
	clearViewerEnv(t)
	srv := e2etest.Start(t, e2etest.Options{Run: runServer, Args: []string{"--token", longToken, "--read-token", "read-" + longToken}})
	if log := srv.Stderr(); !strings.Contains(log, warning) || !strings.Contains(log, "--read-token") || strings.Contains(log, longToken) {
		t.Errorf("with --token and --read-token, the log lacks the warning or shows a token:\n%s", log)
	}

	t.Setenv("PTYHOST_TOKEN", longToken)
	srv = e2etest.Start(t, e2etest.Options{Run: runServer})
	if log := srv.Stderr(); strings.Contains(log, warning) {
		t.Errorf("with PTYHOST_TOKEN, the log warns of a flag:\n%s", log)
	}

	// The cluster's secret and a database password are secrets too.
	for _, tt := range []struct {
		db   string
		want []string
	}{
		{"postgres://ptyhost:pw@127.0.0.1/ptyhost", []string{"--token", "--cluster-secret", "--db (its password)"}},
		{"postgresql://ptyhost@127.0.0.1/ptyhost?password=pw", []string{"--token", "--cluster-secret", "--db (its password)"}},
		{"postgres://ptyhost@127.0.0.1/ptyhost", []string{"--token", "--cluster-secret"}},
	} {
		c, err := parseServeFlags([]string{"--db", tt.db, "--node-name", "a", "--advertise-url", "http://127.0.0.1:7420",
			"--token", longToken, "--cluster-secret", "cluster-" + longToken}, stdio{out: io.Discard, err: io.Discard})
		if err != nil {
			t.Fatalf("parseServeFlags with %s: %v", tt.db, err)
		}
		if !slices.Equal(c.tokenFlags, tt.want) {
			t.Errorf("with --db %s: secrets' flags %q, want %q", tt.db, c.tokenFlags, tt.want)
		}
	}

	for _, tt := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"serve", "--help"}, []string{"--token TOKEN", "--read-token TOKEN"}},
		{[]string{"ls", "--help"}, []string{"--token TOKEN"}},
		{[]string{"env", "show", "--help"}, []string{"--token TOKEN"}},
	} {
		_, stdout, _ := runCmd(t, tt.args...)
		for _, flag := range tt.flags {
			_, help, _ := strings.Cut(stdout, "\n  "+flag+"\n")
			help, _, _ = strings.Cut(help, "\n  -") // the next flag; the description is wrapped
			help = strings.Join(strings.Fields(help), " ")
			if !strings.Contains(help, "as a flag shows in the process list") || !strings.Contains(help, "PTYHOST_") {
				t.Errorf("%s: the help of %s does not point from the flag to the variable: %q", strings.Join(tt.args, " "), flag, help)
			}
		}
	}
}

// TestServeRefusesShortTokens: a token shorter than 16 bytes is refused
// (exit status 2) wherever it comes from and whatever the listen address,
// without the error showing it.
func TestServeRefusesShortTokens(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		file string
	}{
		{name: "one byte beyond loopback", args: []string{"--listen", "0.0.0.0:0", "--token", "a"}},
		{name: "on loopback", args: []string{"--token", "fifteen-bytes-x"}},
		{name: "variable", env: map[string]string{"PTYHOST_TOKEN": "shorttok"}},
		{name: "file", file: "token = \"shorttok\"\n"},
		{name: "read token", args: []string{"--token", longToken, "--read-token", "shorttok"}},
		{name: "read token variable", args: []string{"--token", longToken}, env: map[string]string{"PTYHOST_READ_TOKEN": "shorttok"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearViewerEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			// Loopback and a free port, unless the case says otherwise:
			// a regression must not take the default port.
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			code, stdout, stderr := runCmd(t, args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, "bytes long: want at least 16") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the token refused", code, stdout, stderr)
			}
			for _, secret := range []string{"shorttok", "fifteen-bytes-x"} {
				if strings.Contains(stderr, secret) {
					t.Errorf("the error shows the token: %q", stderr)
				}
			}
		})
	}

	clearViewerEnv(t)
	if _, err := parseServeFlags([]string{"--listen", "0.0.0.0:0", "--token", "sixteen-bytes-xx"}, stdio{out: io.Discard, err: io.Discard}); err != nil {
		t.Errorf("a token of 16 bytes: %v", err)
	}
}

// TestByteSizeOverflow: a size too large for an int is refused, rather
// than wrapping around to another one.
func TestByteSizeOverflow(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "4MiB", want: 4 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2G", want: 2 << 30},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "8589934592GiB", wantErr: "too large"}, // wrapped negative
		{in: "8796093022207MiB", want: 8796093022207 << 20},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "17592186044417MiB", wantErr: "too large"}, // wrapped to 1 MiB
		{in: "8796093022208MiB", wantErr: "too large"},  // wrapped negative
		{in: "9007199254740992K", wantErr: "too large"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "0", wantErr: "want a positive size"},
		{in: "lots", wantErr: "want a positive size"},
	} {
		var b byteSize
		err := b.Set(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || int(b) != tt.want):
			t.Errorf("%s: %d, %v; want %d", tt.in, b, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %d, %v; want an error saying %q", tt.in, b, err, tt.wantErr)
		}
	}
}

// TestScrollbackLimit: --scrollback (its variable, the file's scrollback)
// above the 1 GiB a plugin keeps is refused with exit status 2, instead
// of a server whose every create fails.
func TestScrollbackLimit(t *testing.T) {
	clearServeEnv(t)
	c, err := parseServeFlags([]string{"--scrollback", "1024MiB"}, stdio{out: io.Discard, err: io.Discard})
	if err != nil || int(c.scrollback) != core.MaxScrollbackBytes {
		t.Errorf("--scrollback 1024MiB: %d, %v", c.scrollback, err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  string
		file string
		want string
	}{
		{name: "2 GiB", args: []string{"--scrollback", "2048MiB"}, want: "2GiB is too large: want at most 1GiB"},
		{name: "one byte more", args: []string{"--scrollback", "1073741825"}, want: "want at most 1GiB"},
		{name: "overflow", args: []string{"--scrollback", "17592186044417MiB"}, want: "too large"},
		{name: "variable", env: "2048MiB", want: "PTYHOST_SCROLLBACK"},
		{name: "file", file: "scrollback = \"2048MiB\"\n", want: "Invalid scrollback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			if tt.env != "" {
				t.Setenv("PTYHOST_SCROLLBACK", tt.env)
			}
			// Loopback and a free port, unless the case says otherwise:
			// a regression must not take the default port.
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			code, _, stderr := runCmd(t, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "too large") {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestSizeFlagsGiB: --scrollback and --record-max-bytes take GiB, and a
// scrollback below the 4 KiB core.Options requires is bad usage (exit
// status 2) naming the flag, not a failure of the server's start.
func TestSizeFlagsGiB(t *testing.T) {
	clearServeEnv(t)
	c, err := parseServeFlags([]string{"--scrollback", "1GiB", "--record-max-bytes", "1GiB"}, stdio{out: io.Discard, err: io.Discard})
	if err != nil || int(c.scrollback) != 1<<30 || int(c.recordMaxBytes) != 1<<30 {
		t.Errorf("--scrollback 1GiB --record-max-bytes 1GiB: %d, %d, %v", c.scrollback, c.recordMaxBytes, err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{name: "flag", args: []string{"--scrollback", "1KiB"}, want: "-scrollback"},
		{name: "one byte less", args: []string{"--scrollback", "4095"}, want: "-scrollback"},
		{name: "variable", env: "1K", want: "PTYHOST_SCROLLBACK"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			if tt.env != "" {
				t.Setenv("PTYHOST_SCROLLBACK", tt.env)
			}
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...)
			code, _, stderr := runCmd(t, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "too small: want at least 4KiB") {
				t.Errorf("exit %d, stderr %q; want 2, %q and too small", code, stderr, tt.want)
			}
		})
	}
}

// TestServeConfigFileLimits: serve --config refuses a directory and a
// file over 1 MiB, a device that never ends (/dev/zero) included, with
// exit status 2 and without reading more than the bound; a named pipe
// (`--config <(…)`) is read as a file is.
func TestServeConfigFileLimits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(dir, "large.hcl")
	if err := os.WriteFile(large, []byte("# "+strings.Repeat("x", maxConfigFileBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	largest := filepath.Join(dir, "largest.hcl")
	content := "listen = \"127.0.0.1:0\"\n# "
	if err := os.WriteFile(largest, []byte(content+strings.Repeat("x", maxConfigFileBytes-len(content)-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, want string }{
		{"device", "/dev/zero", "/dev/zero is larger than 1 MiB"},
		{"directory", dir, dir + " is a directory"},
		{"over 1 MiB", large, large + " is larger than 1 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			code, _, stderr := runCmd(t, "serve", "--config", tt.path)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	clearServeEnv(t)
	if c, err := parseServeFlags([]string{"--config", largest}, stdio{out: io.Discard, err: io.Discard}); err != nil || c.listen != "127.0.0.1:0" {
		t.Errorf("a file of exactly 1 MiB: listen %q, %v", c.listen, err)
	}
	go func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.WriteString("listen = \"127.0.0.1:0\"\n")
			f.Close()
		}
	}()
	if c, err := parseServeFlags([]string{"--config", fifo}, stdio{out: io.Discard, err: io.Discard}); err != nil || c.listen != "127.0.0.1:0" {
		t.Errorf("a named pipe: listen %q, %v", c.listen, err)
	}
}
