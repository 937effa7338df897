package main

import (
	"errors"
	"io"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// proxyTo puts an e2etest.Proxy in front of the server at
// serverURL and returns it with its URL.
func proxyTo(t *testing.T, serverURL string) (*e2etest.Proxy, string) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	p := e2etest.NewProxy(t, u.Host)
	return p, "http://" + p.Addr()
}

// cut drops every connection through p, as a network failure does, and
// serves again.
func cut(p *e2etest.Proxy) {
	p.Stop()
	p.Start()
}

// reconnectNotes matches what attach prints to the terminal around a
// reconnection, and the line it ends with when the session exits, so that
// what is left is the session's output.
var reconnectNotes = regexp.MustCompile(`\r\n\[[^\]\r\n]*reconnecting…\]\r\n|\[reconnected\]\r\n|\r\n\[session exited with code \d+\]\r\n$`)

// TestE2ERunReconnects runs `ptyhost run` through a proxy and cuts its
// connection twice while the session counts: it reconnects by itself,
// resumes from its offset (every line once, in order) and exits with the
// session's status.
func TestE2ERunReconnects(t *testing.T) {
	srv := startServer(t)
	p, proxyURL := proxyTo(t, srv.URL)
	const n = 150
	script := `i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do i=$((i+1)); echo "n$i"; sleep 0.02; done; exit 7`
	cmd, _, out := startCLI(t, "run", "--server", proxyURL, "--", "/bin/sh", "-c", script)

	out.wait(t, regexp.MustCompile(`n20\r\n`))
	cut(p)
	out.wait(t, regexp.MustCompile(`(?s)reconnecting….*\[reconnected\]`))
	out.wait(t, regexp.MustCompile(`n60\r\n`))
	cut(p)
	out.wait(t, regexp.MustCompile(`(?s)(\[reconnected\].*){2}`))
	// The reader may lag the process's exit: wait for the last line.
	out.wait(t, regexp.MustCompile(`n`+strconv.Itoa(n)+`\r\n`))

	err := waitExit(cmd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit = %v, want status 7; screen tail %q", err, tail([]byte(out.buf.String())))
	}
	out.wait(t, regexp.MustCompile(`\[session exited with code 7\]\r\n$`))
	screen := reconnectNotes.ReplaceAllString(out.buf.String(), "")
	var want strings.Builder
	for i := 1; i <= n; i++ {
		want.WriteString("n" + strconv.Itoa(i) + "\r\n")
	}
	if screen != want.String() {
		t.Errorf("output with the reconnection notes taken out is not n1..n%d once each, in order:\n%q", n, screen)
	}
}

// TestE2EAttachReconnectSessionGone: when the session is gone by the time
// attach reconnects, it stops and says so.
func TestE2EAttachReconnectSessionGone(t *testing.T) {
	srv := startServer(t)
	p, proxyURL := proxyTo(t, srv.URL)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	cmd, ptmx, out := startCLI(t, "attach", "--server", proxyURL, id)
	ptmx.Write([]byte("echo $((40+2))\r"))
	out.wait(t, regexp.MustCompile(`42\r\n`))

	p.Stop() // cut, and refuse new connections
	out.wait(t, regexp.MustCompile(`reconnecting…`))
	if code, _, err := srv.Do("DELETE", "/api/v1/sessions/"+id, nil); err != nil || code != 204 {
		t.Fatalf("destroy: %d %v", code, err)
	}
	p.Start()
	err := waitExit(cmd)
	// Destroying hangs the shell up; attach exits with the status the
	// server reports.
	out.wait(t, regexp.MustCompile(`session `+regexp.QuoteMeta(id)+` has ended \(exit code \d+\)`))
	m := regexp.MustCompile(`has ended \(exit code (\d+)\)`).FindStringSubmatch(out.buf.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || strconv.Itoa(ee.ExitCode()) != m[1] || ee.ExitCode() == 0 {
		t.Errorf("exit = %v, want status %s; screen tail %q", err, m[1], tail([]byte(out.buf.String())))
	}
	if n := strings.Count(out.buf.String(), "reconnecting…"); n != 1 {
		t.Errorf("%d reconnecting notes, want 1", n)
	}
}

// TestAttachReconnectsAfterAClose: a server that closes with 1001 (going
// away), or a node that closes with 4503 (in a cluster, the session's
// node is lost), is attached again, and the session's exit code ends it.
func TestAttachReconnectsAfterAClose(t *testing.T) {
	for _, tt := range []struct{ close, why string }{
		{"shutdown", "the server is shutting down"},
		{"nodelost", "the node that runs the session is lost"},
	} {
		t.Run(tt.close, func(t *testing.T) {
			f := newFakeServer(t)
			c, stdin := startAttach(t, f, "s1")
			c.out.waitFor(t, "replayed")
			typeIn(t, stdin, tt.close+"\n")
			c.out.waitFor(t, tt.close+"\nreplayed\r\n") // the second hello's replay
			typeIn(t, stdin, "exit 3\n")
			if code := c.wait(t); code != 3 {
				t.Fatalf("exit %d, stderr %q", code, c.err.String())
			}
			if got, want := c.err.String(), "\r\n["+tt.why+"; reconnecting…]\r\n[reconnected]\r\n\r\n[session exited with code 3]\r\n"; got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
		})
	}
}

// TestAttachReconnectsAfterRestart: a server that closes with 1012 (it
// stops, the session goes on) is attached again at the offset received so
// far, and the session's exit code ends it.
func TestAttachReconnectsAfterRestart(t *testing.T) {
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "s1")
	c.out.waitFor(t, "replayed")
	typeIn(t, stdin, "restart\n")
	c.out.waitFor(t, "restart\nreplayed\r\n") // the second hello's replay
	typeIn(t, stdin, "exit 4\n")
	if code := c.wait(t); code != 4 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	if got, want := c.err.String(), "\r\n[the server is restarting; the session goes on; reconnecting…]\r\n[reconnected]\r\n\r\n[session exited with code 4]\r\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	// The first attach asked for the replay; the second resumed after
	// "replayed\r\n" and the echo of "restart\n".
	queries := f.attachQueries()
	if want := []string{"", "offset=18"}; !slices.Equal(queries, want) {
		t.Errorf("attach queries %q, want %q", queries, want)
	}
}

func TestDetachedFor(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		status core.Status
		ago    time.Duration
		want   string
	}{
		{core.StatusIdle, 45 * time.Second, "45s"},
		{core.StatusIdle, 3*time.Minute + 59*time.Second, "3m"},
		{core.StatusIdle, 2*time.Hour + 5*time.Minute, "2h5m"},
		{core.StatusIdle, 2 * time.Hour, "2h"},
		{core.StatusIdle, 76 * time.Hour, "3d4h"},
		{core.StatusActive, time.Minute, "1m"}, // started, never attached
		{core.StatusTerminated, time.Minute, "-"},
		{core.StatusError, time.Minute, "-"},
	} {
		s := session{Status: tt.status, DetachedAt: now.Add(-tt.ago)}
		if got := detachedFor(s, now); got != tt.want {
			t.Errorf("%s %v ago: %q, want %q", tt.status, tt.ago, got, tt.want)
		}
	}
	for _, st := range []core.Status{core.StatusIdle, core.StatusActive} {
		if got := detachedFor(session{Status: st}, now); got != "-" {
			t.Errorf("%s without detached_at: %q, want -", st, got)
		}
	}
}

// TestAttachDetachWhileReconnecting: the detach key stops the
// reconnecting, and the one line says how to come back.
func TestAttachDetachWhileReconnecting(t *testing.T) {
	_, c, stdin := reconnectingAttach(t)
	typeIn(t, stdin, "\x1d")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	want := "\r\n[the server is shutting down; reconnecting…]\r\n[stopped reconnecting; session s1; reattach with 'ptyhost attach s1']\r\n"
	if got := c.err.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

// quietAttach runs attach to session id of a fake server with the stall
// timeout stall. It returns the server, attach's stdin, its stdout and
// stderr, and exitFive, which types "exit 5" and fails the test unless
// attach then ends with that exit.
func quietAttach(t *testing.T, id string, stall time.Duration) (f *fakeServer, out, errOut *syncBuffer, exitFive func()) {
	t.Helper()
	f = newFakeServer(t)
	c, err := newClient(f.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := newStdin(t)
	out, errOut = new(syncBuffer), new(syncBuffer)
	type result struct {
		res attachResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := attach(t.Context(), c, stdio{in: pr, out: out, err: errOut},
			attachOptions{id: id, detachKey: defaultDetachKey, reconnect: 10 * time.Second, stall: stall})
		done <- result{res, err}
	}()
	return f, out, errOut, func() {
		t.Helper()
		typeIn(t, pw, "exit 5\n")
		select {
		case r := <-done:
			if r.err != nil || r.res.end != endExited || r.res.code != 5 {
				t.Errorf("attach = %+v, %v; want exit 5", r.res, r.err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("attach did not end; stderr %q", errOut.String())
		}
	}
}

// TestAttachReconnectsAfterAStall: a connection on which nothing comes
// from the server, not even an answer to attach's pings, for the stall
// timeout is taken for lost: attach reconnects, resuming at its offset; a
// connection the server answers on stays up however quiet the session.
func TestAttachReconnectsAfterAStall(t *testing.T) {
	const stall = 400 * time.Millisecond
	f, _, errOut, exitFive := quietAttach(t, "stall1", stall)
	errOut.waitFor(t, "[nothing from the server for 400ms, not even an answer to a ping: the connection has stalled; reconnecting…]\r\n[reconnected]\r\n")
	// Answering, the second connection outlives several stall timeouts.
	time.Sleep(3 * stall)
	exitFive()
	if n := strings.Count(errOut.String(), "reconnecting"); n != 1 {
		t.Errorf("reconnected %d times, want once; stderr %q", n, errOut.String())
	}
	queries := f.attachQueries()
	if want := []string{"", "offset=10"}; !slices.Equal(queries, want) {
		t.Errorf("attach queries %q, want %q (resumed after the replay)", queries, want)
	}
}

// TestAttachPingsAQuietServer: a server that sends no pings of its own (an
// embedder's, with a longer interval or none) is not taken for stalled
// while it answers attach's pings, however quiet the session.
func TestAttachPingsAQuietServer(t *testing.T) {
	// attach pings after stall/3 of quiet: the pong has 2/3 of it to come.
	const stall = 600 * time.Millisecond
	f, out, errOut, exitFive := quietAttach(t, "quiet1", stall)
	out.waitFor(t, "replayed\r\n")
	time.Sleep(4 * stall)
	exitFive()
	if strings.Contains(errOut.String(), "reconnecting") {
		t.Errorf("attach reconnected to a server that answers its pings; stderr %q", errOut.String())
	}
	if queries := f.attachQueries(); len(queries) != 1 {
		t.Errorf("attach queries %q, want one connection", queries)
	}
}

// TestAttachDetachAfterTypingWhileReconnecting: the detach key works
// while attach reconnects even after other keys were typed, and those
// keys, typed into no connection, are not sent once it is back.
func TestAttachDetachAfterTypingWhileReconnecting(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reattach bool // the server takes attaches again before the detach
	}{{"detach", false}, {"reattach first", true}} {
		t.Run(tt.name, func(t *testing.T) {
			f, c, stdin := reconnectingAttach(t)
			typeIn(t, stdin, "lost keys")
			typeIn(t, stdin, "more lost keys\n")
			if tt.reattach {
				// typeIn returns once the keys are read; let them reach
				// the reconnecting loop before it can reconnect.
				time.Sleep(100 * time.Millisecond)
				f.mu.Lock()
				delete(f.canned, "GET /api/v1/sessions/s1/attach")
				f.mu.Unlock()
				c.err.waitFor(t, "[reconnected]\r\n")
				typeIn(t, stdin, "sent\n")
				c.out.waitFor(t, "sent\n")
			}
			typeIn(t, stdin, "\x1d")
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, c.err.String())
			}
			if !strings.Contains(c.err.String(), "[detached from session s1") && !strings.Contains(c.err.String(), "[stopped reconnecting; session s1") {
				t.Errorf("stderr %q, want the detach line", c.err.String())
			}
			if in := f.input.String(); strings.Contains(in, "lost") {
				t.Errorf("the server received %q, keys typed while reconnecting included", in)
			}
		})
	}
}

// attachQueries returns the query of each attach request f has had, in
// order.
func (f *fakeServer) attachQueries() []string {
	var queries []string
	for _, r := range f.requestsSoFar() {
		if strings.HasSuffix(r.path, "/attach") {
			queries = append(queries, r.query)
		}
	}
	return queries
}

// reconnectingAttach starts attach on s1, then has the server go away
// and refuse attaches (503): attach is reconnecting when it returns.
func reconnectingAttach(t *testing.T) (*fakeServer, *cmdRun, *io.PipeWriter) {
	t.Helper()
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "s1")
	c.out.waitFor(t, "replayed")
	f.respond("GET /api/v1/sessions/s1/attach", 503, `{"error": "try later"}`)
	typeIn(t, stdin, "shutdown\n")
	c.err.waitFor(t, "reconnecting…]\r\n")
	return f, c, stdin
}
