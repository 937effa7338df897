package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
)

// refusingServer serves one SSH connection on a loopback listener that
// refuses the first refusals session channels and accepts the rest, and
// returns a conn of the plugin's on it, counted as holding open sessions
// in a group whose connections the server allowed perConn.
func refusingServer(t *testing.T, refusals int32, open, perConn int) (*conn, *atomic.Int32) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := &ssh.ServerConfig{NoClientAuth: true}
	srvCfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var tries atomic.Int32
	accepted := make(chan ssh.Channel, 16)
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case ch := <-accepted:
				ch.Close()
			default:
				return
			}
		}
	})
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		_, chans, reqs, err := ssh.NewServerConn(nc, srvCfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			if tries.Add(1) <= refusals {
				nch.Reject(ssh.ResourceShortage, "no more sessions")
				continue
			}
			ch, chReqs, err := nch.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(chReqs)
			accepted <- ch
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wire := newWireConn(nc)
	cc, chans, reqs, err := ssh.NewClientConn(wire, ln.Addr().String(), &ssh.ClientConfig{
		User: "test", HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the test's own server
	})
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { client.Close() })
	p := &pool{}
	c := &conn{
		group:    &group{perConn: perConn, pool: p},
		cfg:      &config{Target: endpoint{Host: "127.0.0.1", Port: 22}, ConnectTimeout: time.Minute},
		pool:     p,
		log:      hclog.NewNullLogger(),
		link:     &link{client: client, wire: wire},
		open:     open,
		opening:  make(chan struct{}, 1),
		unusable: make(chan struct{}),
	}
	return c, &tries
}

// A refusal on a connection holding fewer sessions than the server allowed
// before (none, even) is a slot not yet freed: openSession tries again,
// and the open goes through once the server has room, without marking the
// connection full.
func TestOpenSessionWaitsForAFreedSlot(t *testing.T) {
	for _, open := range []int{9, 0} {
		c, tries := refusingServer(t, 3, open, 10)
		sess, err := c.openSession(testContext(t))
		if err != nil {
			t.Fatalf("%d open: openSession: %v", open, err)
		}
		sess.Close()
		if n := tries.Load(); n != 4 {
			t.Errorf("%d open: %d channel opens, want 4 (3 refused, then accepted)", open, n)
		}
		if c.full || c.open != open+1 {
			t.Errorf("%d open: full %v, open %d; want false, %d", open, c.full, c.open, open+1)
		}
	}
}

// A connection holding as many sessions as the server allows is full at
// the first refusal, without waiting; one that stays refused is full
// after slotFreeWait; and a refusal on one whose server never refused
// before marks it full at once (its limit is learned there). A refusal
// with none open is an error, not a full connection: at once while the
// limit is not known, after slotFreeWait once it is.
func TestOpenSessionFull(t *testing.T) {
	for _, tt := range []struct {
		name          string
		open, perConn int
		wait          time.Duration
		full          bool
	}{
		{"at the limit", 10, 10, 0, true},
		{"limit not known", 4, 0, 0, true},
		{"never freed", 9, 10, slotFreeWait, true},
		{"none open, limit not known", 0, 0, 0, false},
		{"none open, never freed", 0, 10, slotFreeWait, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := refusingServer(t, 1<<30, tt.open, tt.perConn)
			start := time.Now()
			_, err := c.openSession(testContext(t))
			d := time.Since(start)
			if err == nil || errors.Is(err, errConnFull) != tt.full {
				t.Fatalf("openSession: %v, want an error that is errConnFull: %v", err, tt.full)
			}
			if c.full != tt.full {
				t.Errorf("marked full: %v, want %v", c.full, tt.full)
			}
			// The wait is wall-clock time, round trips included.
			if d < tt.wait || d > tt.wait+2*time.Second {
				t.Errorf("refused after %v, want about %v", d, tt.wait)
			}
		})
	}
	// The wait honours ctx, and says the server was refusing.
	c, _ := refusingServer(t, 1<<30, 9, 10)
	ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
	defer cancel()
	if _, err := c.openSession(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("openSession with a short ctx: %v, want its deadline, saying the server was refusing", err)
	}
}

// While one Spawn waits for a slot, the connection is free for others:
// a second open on it is not held up by the first one's wait.
func TestOpenSessionWaitHoldsNoLock(t *testing.T) {
	c, _ := refusingServer(t, 1<<30, 9, 10)
	ctx, cancel := context.WithCancel(testContext(t))
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		c.openSession(ctx)
	}()
	defer func() {
		cancel()
		<-waited
	}()
	time.Sleep(3 * slotRetry)
	locked := make(chan struct{})
	go func() {
		c.opening <- struct{}{}
		defer c.unlockOpen()
		close(locked)
	}()
	select {
	case <-locked:
	case <-time.After(slotFreeWait / 2):
		t.Fatal("the turn to open is held while openSession waits for a slot")
	}
}
