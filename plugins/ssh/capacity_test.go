package main

// Issue 8, item 7: an environment's sessions beyond what one connection
// may hold (OpenSSH's MaxSessions, 10 by default) go on more connections.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// Fifty concurrent sessions on one environment, through the plugin
// binary, against an sshd with OpenSSH's default MaxSessions: all start
// and echo, on five connections; when they end, the connections close
// after the linger.
func TestFiftySessionsAtDefaultMaxSessions(t *testing.T) {
	const sessions, perConn = 50, 10
	s := testSSHD(t)
	priv := s.startPrivate(t)
	if got := priv.setting(t, "maxsessions"); got != fmt.Sprint(perConn) {
		t.Fatalf("the private sshd's MaxSessions is %s, want OpenSSH's default %d", got, perConn)
	}
	env := loadSSH(t)
	ctx := testContext(t)
	cfg := s.config(t, priv.port, map[string]any{"linger": "1s"})

	ptys := make([]shared.PTY, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range sessions {
		wg.Go(func() {
			ptys[i], errs[i] = env.Spawn(ctx, request(fmt.Sprintf("fifty-%d", i), cfg,
				"/bin/sh", "-c", fmt.Sprintf("echo started-%d; exec cat", i)))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("session %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for _, p := range ptys {
			if p != nil {
				p.Close()
			}
		}
	})
	if failed > 0 {
		t.Fatalf("%d of %d sessions failed to start", failed, sessions)
	}
	conns, logins := established(t, priv.port), priv.accepted()
	t.Logf("%d concurrent sessions started in %v on %d connections (%d logins)", sessions, elapsed, conns, logins)
	if want := sessions / perConn; conns != want || logins != want {
		t.Errorf("%d TCP connections and %d logins for %d sessions, want %d and %d", conns, logins, sessions, want, want)
	}

	terms := make([]*sharedtest.Term, sessions)
	for i, p := range ptys {
		terms[i] = sharedtest.NewTerm(t, p)
		terms[i].Expect(ctx, fmt.Sprintf("started-%d", i))
	}
	for i, term := range terms {
		term.Write(fmt.Sprintf("echo-%d\r", i))
		term.Expect(ctx, fmt.Sprintf("echo-%d\r\necho-%d", i, i))
	}
	for _, p := range ptys {
		if err := p.Kill(ctx); err != nil {
			t.Error(err)
		}
	}
	for _, term := range terms {
		term.Wait(ctx)
		term.Close()
	}
	if !waitFor(15*time.Second, func() bool { return established(t, priv.port) == 0 }) {
		t.Errorf("%d connections left after the linger", established(t, priv.port))
	}
}

// With max_connections connections full, a session fails at once with a
// reason that names both limits, not after connect_timeout.
func TestAllConnectionsFull(t *testing.T) {
	const perConn = 10
	s := testSSHD(t)
	priv := s.startPrivate(t)
	env := loadSSH(t)
	ctx := testContext(t)
	cfg := s.config(t, priv.port, map[string]any{"max_connections": 2, "connect_timeout": "30s"})
	var ptys []shared.PTY
	t.Cleanup(func() {
		for _, p := range ptys {
			p.Close()
		}
	})
	for i := range 2 * perConn {
		p, err := env.Spawn(ctx, request(fmt.Sprintf("full-%d", i), cfg, "/bin/sh", "-c", "exec cat"))
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		ptys = append(ptys, p)
	}
	start := time.Now()
	p, err := env.Spawn(ctx, request("full-over", cfg, "/bin/sh", "-c", "exec cat"))
	if err == nil {
		p.Close()
		t.Fatalf("session %d of max_connections 2 × MaxSessions %d started", 2*perConn+1, perConn)
	}
	for _, want := range []string{"all 2 connections", "max_connections", "10 sessions", "MaxSessions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the refusal took %v (connect_timeout is 30s)", d)
	}
	if n := established(t, priv.port); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	// When a session ends, its connection has room again.
	if err := ptys[0].Close(); err != nil {
		t.Fatal(err)
	}
	ptys = ptys[1:]
	p, err = env.Spawn(ctx, request("full-again", cfg, "/bin/sh", "-c", "echo room-again"))
	if err != nil {
		t.Fatalf("after a session ended: %v", err)
	}
	ptys = append(ptys, p)
	out, _ := io.ReadAll(p)
	if !strings.Contains(string(out), "room-again") {
		t.Errorf("output %q", out)
	}
}

// BenchmarkFiftySessions measures starting 50 concurrent sessions on one
// environment against an sshd with OpenSSH's default MaxSessions, from
// no connection: go test -run '^$' -bench FiftySessions -benchtime 5x ./plugins/ssh/
func BenchmarkFiftySessions(b *testing.B) {
	const sessions = 50
	s := testSSHD(b)
	priv := s.startPrivate(b)
	env := loadSSH(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var conns int
	for i := 0; b.Loop(); i++ {
		// A fresh environment id each round: new connections.
		cfg := s.config(b, priv.port, map[string]any{"linger": "0s"})
		ptys := make([]shared.PTY, sessions)
		var wg sync.WaitGroup
		for j := range sessions {
			wg.Go(func() {
				req := request(fmt.Sprintf("bench-%d-%d", i, j), cfg, "/bin/sh", "-c", "exec cat")
				req.EnvironmentID = fmt.Sprintf("bench-%d", i)
				p, err := env.Spawn(ctx, req)
				if err != nil {
					b.Error(err)
					return
				}
				ptys[j] = p
			})
		}
		wg.Wait()
		b.StopTimer()
		conns = established(b, priv.port)
		for _, p := range ptys {
			if p != nil {
				p.Close()
			}
		}
		if b.Failed() {
			b.FailNow()
		}
		waitFor(10*time.Second, func() bool { return established(b, priv.port) == 0 })
		b.StartTimer()
	}
	b.ReportMetric(float64(conns), "connections")
}
