package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/shared"
)

// forwardingServer is an SSH jump host: it logs in with the password
// "pw" and forwards direct-tcpip channels to the address they name, as
// OpenSSH's ProxyJump needs.
type forwardingServer struct {
	port  int
	mu    sync.Mutex
	conns []net.Conn // its clients' connections, for drop
}

func newForwardingServer(t *testing.T) *forwardingServer {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
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
	s := &forwardingServer{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					wg.Go(func() { forward(nch) })
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.drop(false)
		wg.Wait()
	})
	return s
}

// forward serves a direct-tcpip channel (RFC 4254, 7.2): it connects to
// the address the channel names and splices the two until either ends.
func forward(nch ssh.NewChannel) {
	var req struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if nch.ChannelType() != "direct-tcpip" {
		_ = nch.Reject(ssh.UnknownChannelType, "direct-tcpip only")
		return
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &req); err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	tc, err := net.Dial("tcp", net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port))))
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		tc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	var once sync.Once
	done := make(chan struct{})
	end := func() {
		once.Do(func() {
			tc.Close()
			ch.Close()
			close(done)
		})
	}
	go func() { _, _ = io.Copy(ch, tc); end() }()
	go func() { _, _ = io.Copy(tc, ch); end() }()
	<-done
}

// drop closes the jump host's connections, as a jump host that goes
// away; with reset, it resets them, as a jump host that crashed or a
// firewall between.
func (s *forwardingServer) drop(reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if reset {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
}

// A session through a jump host whose connection to the jump host was
// lost ended with a reason that named only the target ("ssh connection
// to db1:22 lost: the server closed the connection"): the tunnel to the
// target ends with the jump host's connection, and reads an end of file
// as if the target had closed it. The reason names the jump host, and
// says it was its connection that was lost; the target's own loss still
// names the target.
func TestJumpHostLoss(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(jump *forwardingServer, target *stallingServer)
		want string
		not  string
	}{
		{"the jump host", func(jump *forwardingServer, _ *stallingServer) { jump.drop(false) },
			"lost: the jump host closed the connection", "the target host"},
		{"the jump host, reset", func(jump *forwardingServer, _ *stallingServer) { jump.drop(true) },
			"lost: the connection to the jump host failed: read tcp 127.0.0.1:", "the target host"},
		{"the target", func(_ *forwardingServer, target *stallingServer) { target.drop() },
			"lost: the target host, or the jump host's connection to it, closed the connection (the connection to the jump host was up)", "the jump host closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jump := newForwardingServer(t)
			target := newStallingServer(t, func(int, int) string { return answerAll })
			raw, err := json.Marshal(map[string]any{"host": "127.0.0.1", "port": target.port, "user": "test",
				"password_env": "PW", "known_hosts": filepath.Join(t.TempDir(), "known_hosts"), "host_key_check": "accept-new",
				"connect_timeout": "5s", "jump": map[string]any{"host": "127.0.0.1", "port": jump.port, "user": "test", "password_env": "PW"}})
			if err != nil {
				t.Fatal(err)
			}
			env := New(nil)
			env.dialer.getenv = func(string) string { return "pw" }
			t.Cleanup(env.Close)
			ctx := testContext(t)
			p, err := env.Spawn(ctx, request("through-jump", raw, "/bin/sh"))
			if err != nil {
				t.Fatalf("Spawn through the jump host: %v", err)
			}
			defer p.Close()

			tt.lose(jump, target)
			st := waitLost(ctx, t, p)
			prefix := fmt.Sprintf("ssh connection to 127.0.0.1:%d through jump host 127.0.0.1:%d lost: ", target.port, jump.port)
			if st.Code != -1 || !strings.HasPrefix(st.Reason, prefix) || !strings.Contains(st.Reason, tt.want) || strings.Contains(st.Reason, tt.not) {
				t.Errorf("exit = %+v; want code -1 and a reason starting %q, with %q and without %q", st, prefix, tt.want, tt.not)
			}
		})
	}
}

// waitLost reads p to its end and returns its exit status.
func waitLost(ctx context.Context, t *testing.T, p shared.PTY) shared.ExitStatus {
	t.Helper()
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(io.Discard, p)
	}()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end with its connection")
	}
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return st
}
