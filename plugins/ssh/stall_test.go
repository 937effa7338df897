package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/shared"
)

// stallMode says what a stallingServer does with the nth session channel
// of its conn-th connection (both counted from 0).
type stallMode func(conn, n int) string

const (
	answerAll    = "answer"  // a session that starts: it prints the start marker
	holdOpen     = "open"    // never answer the channel open
	holdPtyReq   = "pty-req" // accept the channel, never answer its pty-req
	slowOpen     = "slow"    // answer the channel open after openDelay, then start
	holdMarker   = "marker"  // accept the exec, print the start marker once marker is closed
	stallTimeout = "1s"
)

// stallingServer is an SSH server that logs in with the password "pw",
// answers keepalives, and does what mode says with session channels. It
// records each connection's end.
type stallingServer struct {
	port int
	mu   sync.Mutex
	// ended[i] is closed when the ith connection ended.
	ended []chan struct{}
	held  []net.Conn // its connections, for drop
	// authDelay is how long each login takes; openDelay, how long a
	// slowOpen channel waits for its answer.
	authDelay, openDelay time.Duration
	// marker holds the start marker of holdMarker sessions until closed.
	marker chan struct{}
	execs  atomic.Int32 // exec requests of sessions accepted (not Kill's)
}

var okNonce = regexp.MustCompile(`ptyhost;ok;([0-9a-f]+);`)

func newStallingServer(t *testing.T, mode stallMode, opts ...func(*stallingServer)) *stallingServer {
	t.Helper()
	s := &stallingServer{marker: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			time.Sleep(s.authDelay)
			if string(pw) == "pw" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(newSigner(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ended := make(chan struct{})
			s.mu.Lock()
			index := len(s.ended)
			s.ended = append(s.ended, ended)
			s.held = append(s.held, nc)
			s.mu.Unlock()
			wg.Go(func() {
				defer close(ended)
				defer nc.Close()
				sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs) // keepalives are answered
				n := 0
				for nch := range chans {
					switch mode(index, n) {
					case holdOpen:
						// Neither accepted nor rejected.
					case slowOpen:
						wg.Go(func() {
							time.Sleep(s.openDelay)
							ch, chReqs, err := nch.Accept()
							if err == nil {
								go s.startShell(ch, chReqs, nil)
							}
						})
					case holdMarker:
						ch, chReqs, err := nch.Accept()
						if err == nil {
							go s.startShell(ch, chReqs, s.marker)
						}
					case holdPtyReq:
						ch, chReqs, err := nch.Accept()
						if err == nil {
							go holdPty(ch, chReqs)
						}
					default:
						ch, chReqs, err := nch.Accept()
						if err == nil {
							go s.startShell(ch, chReqs, nil)
						}
					}
					n++
				}
				_ = sc.Wait()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.drop()
		wg.Wait()
	})
	return s
}

// drop closes the server's connections, as a server that goes away.
func (s *stallingServer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		c.Close()
	}
}

// holdPty answers a channel's requests until its pty-req, which it never
// answers.
func holdPty(_ ssh.Channel, reqs <-chan *ssh.Request) {
	for r := range reqs {
		if r.Type == "pty-req" {
			continue
		}
		_ = r.Reply(false, nil)
	}
}

// startShell answers a channel's requests, and prints the start marker
// of its exec request's script (once marker is closed, if not nil): a
// session that started, running until the channel closes.
func (s *stallingServer) startShell(ch ssh.Channel, reqs <-chan *ssh.Request, marker <-chan struct{}) {
	for r := range reqs {
		switch r.Type {
		case "pty-req":
			_ = r.Reply(true, nil)
		case "exec":
			_ = r.Reply(true, nil)
			if m := okNonce.FindSubmatch(r.Payload); m != nil {
				s.execs.Add(1)
				go func() {
					if marker != nil {
						<-marker
					}
					_, _ = ch.Write([]byte(okMarker(string(m[1]), 4242)))
				}()
			}
		default:
			_ = r.Reply(false, nil)
		}
	}
}

// connections returns how many connections the server accepted.
func (s *stallingServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ended)
}

// waitEnded reports whether the ith connection ends within d.
func (s *stallingServer) waitEnded(i int, d time.Duration) bool {
	s.mu.Lock()
	if i >= len(s.ended) {
		s.mu.Unlock()
		panic(fmt.Sprintf("connection %d: the server accepted %d", i, len(s.ended)))
	}
	ended := s.ended[i]
	s.mu.Unlock()
	select {
	case <-ended:
		return true
	case <-time.After(d):
		return false
	}
}

// stallSSH returns the plugin's environment and a config for srv, with
// the given linger.
func stallSSH(t *testing.T, srv *stallingServer, linger string) (*SSH, json.RawMessage) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"host": "127.0.0.1", "port": srv.port, "user": "test",
		"password_env": "PW", "known_hosts": filepath.Join(t.TempDir(), "known_hosts"), "host_key_check": "accept-new",
		"connect_timeout": stallTimeout, "linger": linger})
	if err != nil {
		t.Fatal(err)
	}
	env := New(nil)
	env.dialer.getenv = func(k string) string {
		if k == "PW" {
			return "pw"
		}
		return ""
	}
	t.Cleanup(env.Close)
	return env, raw
}

// spawnTimesOut spawns on env and wants the connect_timeout's error.
func spawnTimesOut(t *testing.T, env *SSH, cfg json.RawMessage, id string) {
	t.Helper()
	start := time.Now()
	p, err := env.Spawn(testContext(t), request(id, cfg, "/bin/sh"))
	if err == nil {
		p.Close()
		t.Fatalf("%s: Spawn succeeded on a server that does not answer", id)
	}
	if !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "(connect_timeout)") {
		t.Fatalf("%s: Spawn: %v, want the connect_timeout's error", id, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%s: Spawn took %v, want about %s", id, d, stallTimeout)
	}
}

// A server that answers keepalives but never a session's channel open
// (or its pty-req) left the Spawn's start blocked with its reference on
// the connection: the connection never lingered out, and every later
// Spawn of the environment went to it and timed out behind the first.
// Now the connection is closed once a start runs out of connect_timeout
// on it, and the next Spawn dials a new one.
func TestStuckConnectionIsClosed(t *testing.T) {
	for _, mode := range []string{holdOpen, holdPtyReq} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := newStallingServer(t, func(int, int) string { return mode })
			env, cfg := stallSSH(t, srv, "10m")
			spawnTimesOut(t, env, cfg, "first")
			if !srv.waitEnded(0, 5*time.Second) {
				t.Fatal("the connection on which a start went unanswered is still open")
			}
			spawnTimesOut(t, env, cfg, "second")
			if n := srv.connections(); n != 2 {
				t.Errorf("%d connections after two Spawns on stuck connections, want 2", n)
			}
		})
	}
}

// A stuck connection that holds a started session is kept for it, but no
// new session goes to it: a Spawn that waited behind the stalled start
// moves on to another connection as soon as the stall is found, as does
// the next, and the stuck one closes once its session ends, not after the
// linger.
func TestStuckConnectionKeepsItsSessions(t *testing.T) {
	// Each connection starts its first session and then holds every
	// channel open.
	srv := newStallingServer(t, func(_, n int) string {
		if n == 0 {
			return answerAll
		}
		return holdOpen
	})
	env, cfg := stallSSH(t, srv, "10m")
	ctx := testContext(t)
	a, err := env.Spawn(ctx, request("a", cfg, "/bin/sh"))
	if err != nil {
		t.Fatalf("the first session: %v", err)
	}
	stalled := make(chan struct{})
	go func() {
		defer close(stalled)
		spawnTimesOut(t, env, cfg, "b")
	}()
	// c waits behind b's open (opens go one at a time), with half a
	// second more of its time than b has.
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	c, err := env.Spawn(ctx, request("c", cfg, "/bin/sh"))
	if err != nil {
		t.Fatalf("a session waiting behind a stalled start: %v", err)
	}
	defer c.Close()
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the session waiting behind the stall took %v to start, want about the 0.5s until the stall is found", d)
	}
	<-stalled
	if srv.waitEnded(0, 200*time.Millisecond) {
		t.Fatal("the stuck connection was closed under its started session")
	}
	d, err := env.Spawn(ctx, request("d", cfg, "/bin/sh"))
	if err == nil {
		d.Close() // the new connection holds c, and stalls d
		t.Fatal("a second session on the new connection started; its server holds every channel but the first")
	}
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2: the stuck one and a new one", n)
	}
	a.Close()
	if !srv.waitEnded(0, 5*time.Second) {
		t.Error("the stuck connection is still open after its last session ended")
	}
	if srv.waitEnded(1, 200*time.Millisecond) {
		t.Error("the new connection was closed under its session")
	}
}

// A Spawn that waited behind a stalled start on the same connection, and
// still has time when the connection is closed for it, goes on to a new
// connection.
func TestStartBehindAStallMovesOn(t *testing.T) {
	// The first connection holds every channel open; the next answer.
	srv := newStallingServer(t, func(conn, _ int) string {
		if conn == 0 {
			return holdOpen
		}
		return answerAll
	})
	env, cfg := stallSSH(t, srv, "10m")
	first := make(chan struct{})
	go func() {
		defer close(first)
		spawnTimesOut(t, env, cfg, "first")
	}()
	// The second Spawn waits behind the first's open on connection 0
	// (opens go one at a time), with half a second more of its time.
	time.Sleep(500 * time.Millisecond)
	p, err := env.Spawn(testContext(t), request("second", cfg, "/bin/sh"))
	<-first
	if err != nil {
		t.Fatalf("a Spawn waiting behind a stalled start: %v, want it started on a new connection", err)
	}
	p.Close()
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A start's stall is the server's silence on a request, not the Spawn
// running out of its connect_timeout: a Spawn that spent most of it on a
// slow login, and whose channel open the server answers a moment after
// its deadline, well within connect_timeout of the open, leaves a healthy
// connection. It was marked stuck and closed, and the next Spawn dialled
// (and logged in) again.
func TestSlowLoginDoesNotMakeAStall(t *testing.T) {
	srv := newStallingServer(t, func(int, int) string { return slowOpen }, func(s *stallingServer) {
		s.authDelay = 700 * time.Millisecond
		s.openDelay = 500 * time.Millisecond
	})
	env, cfg := stallSSH(t, srv, "10m")
	spawnTimesOut(t, env, cfg, "slow login")
	// The open is answered 1.2s in; a stall would be found at 1.7s.
	time.Sleep(time.Second)
	p, err := env.Spawn(testContext(t), request("next", cfg, "/bin/sh"))
	if err != nil {
		t.Fatalf("a Spawn on the connection logged in already, whose opens take 0.5s of its 1s: %v", err)
	}
	p.Close()
	if n := srv.connections(); n != 1 {
		t.Errorf("%d connections, want 1: the healthy connection was taken for a stuck one", n)
	}
}

// A session whose exec the server accepted counts as started on its
// connection, though its start marker has not come yet: its command may
// run. It counted only once started, so another start's stall closed the
// connection under it, and its Spawn, finding the connection stuck, ran
// the command again on a new one. Now the connection is kept for it; the
// session starts there, or, when its marker never comes, its Spawn fails
// without a retry and the stuck connection closes with it.
func TestStallSparesAStartingSession(t *testing.T) {
	for _, marked := range []bool{true, false} {
		t.Run(fmt.Sprintf("marker %v", marked), func(t *testing.T) {
			t.Parallel()
			// The first channel stalls at its pty-req, the second starts
			// once the test lets it; other connections answer.
			srv := newStallingServer(t, func(conn, n int) string {
				switch {
				case conn > 0:
					return answerAll
				case n == 0:
					return holdPtyReq
				default:
					return holdMarker
				}
			})
			env, cfg := stallSSH(t, srv, "10m")
			stalled := make(chan struct{})
			go func() {
				defer close(stalled)
				spawnTimesOut(t, env, cfg, "stalled")
			}()
			// The second Spawn's exec is accepted before the stall is
			// found, and it has half a second more than the first.
			time.Sleep(500 * time.Millisecond)
			c := onlyConn(t, env)
			started := make(chan error, 1)
			go func() {
				p, err := env.Spawn(testContext(t), request("starting", cfg, "/bin/sh"))
				if err == nil {
					defer p.Close()
					if srv.waitEnded(0, 200*time.Millisecond) {
						err = errors.New("the stuck connection closed under its session")
					}
				}
				started <- err
			}()
			<-stalled
			if !waitStuck(c, 2*time.Second) {
				t.Fatal("the stalled start did not make its connection stuck")
			}
			if marked {
				close(srv.marker)
			} else {
				defer close(srv.marker) // ends the server's wait to print it
			}
			err := <-started
			if marked && err != nil {
				t.Fatalf("a session whose exec was accepted before the stall: %v", err)
			}
			if !marked && err == nil {
				t.Fatal("a session whose start marker never came started")
			}
			if !srv.waitEnded(0, 5*time.Second) {
				t.Error("the stuck connection is still open after its only session ended")
			}
			if n := srv.connections(); n != 1 {
				t.Errorf("%d connections, want 1: the start was tried again on another", n)
			}
			if n := srv.execs.Load(); n != 1 {
				t.Errorf("%d sessions' exec requests, want 1", n)
			}
		})
	}
}

// onlyConn returns env's one connection.
func onlyConn(t *testing.T, env *SSH) *conn {
	t.Helper()
	env.pool.mu.Lock()
	defer env.pool.mu.Unlock()
	var conns []*conn
	for _, g := range env.pool.groups {
		conns = append(conns, g.conns...)
	}
	if len(conns) != 1 {
		t.Fatalf("%d connections in the pool, want 1", len(conns))
	}
	return conns[0]
}

// waitStuck reports whether c is found stuck within d.
func waitStuck(c *conn, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c.pool.isStuck(c) {
			return true
		}
	}
	return false
}

// On a stuck connection kept for its sessions, the stalled open holds the
// turn to open a channel until the connection closes. Kill and Close,
// which signal the process group on a channel of their own, waited for
// that turn: each Close took closeWait, and left a goroutine parked for
// each signal. Now they give up on the channel at once.
func TestCloseOnAStuckConnection(t *testing.T) {
	srv := newStallingServer(t, func(_, n int) string {
		if n == 0 {
			return answerAll
		}
		return holdOpen
	})
	env, cfg := stallSSH(t, srv, "10m")
	a, err := env.Spawn(testContext(t), request("a", cfg, "/bin/sh"))
	if err != nil {
		t.Fatalf("the first session: %v", err)
	}
	c := onlyConn(t, env)
	spawnTimesOut(t, env, cfg, "b")
	if !waitStuck(c, 2*time.Second) {
		t.Fatal("the stalled start did not make its connection stuck")
	}
	start := time.Now()
	a.Close()
	if d := time.Since(start); d > closeWait/2 {
		t.Errorf("Close on a stuck connection took %v, want it not to wait for the stalled open's turn (%v)", d, closeWait)
	}
	if !srv.waitEnded(0, 5*time.Second) {
		t.Error("the stuck connection is still open after its last session ended")
	}
}

// run waits for its turn to open a channel no longer than its timeout,
// and leaves no goroutine behind waiting for it.
func TestRunWaitsForItsTurnWithinItsTimeout(t *testing.T) {
	c, tries := refusingServer(t, 0, 0, 0)
	c.opening <- struct{}{} // an open under way, never answered
	start := time.Now()
	err := c.run("true", 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no turn to open a channel") && !strings.Contains(err.Error(), "opened no channel") {
		t.Fatalf("run behind an open that never ends: %v, want its timeout's error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("run took %v, want about its 200ms timeout", d)
	}
	time.Sleep(50 * time.Millisecond) // the goroutine's give-up
	c.unlockOpen()
	time.Sleep(100 * time.Millisecond)
	if n := tries.Load(); n != 0 {
		t.Errorf("%d channel opens after run gave up, want none", n)
	}
}
