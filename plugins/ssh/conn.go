package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// conn is one pooled connection of a group. ready is closed when its dial
// has ended; link or dialErr is set by then. dead is closed when the
// connection is gone, for whatever reason (lost, lingered out, plugin
// stopping).
type conn struct {
	group *group
	cfg   *config
	pool  *pool
	log   hclog.Logger

	ready   chan struct{}
	link    *link // set before ready is closed, when the dial worked
	dialErr error // set before ready is closed, when it failed

	dead     chan struct{}
	deadOnce sync.Once
	lostMu   sync.Mutex
	lost     string // why it died; lostMu protects it

	// Under pool.mu:
	refs        int  // Spawns using it, starting or started
	open        int  // session channels open on it
	sessions    int  // sessions started on it and not yet closed
	full        bool // the server refused a session on it; cleared when one ends
	stuck       bool // the server left a session's start unanswered (stall.go)
	lingerTimer *time.Timer

	// opening serialises channel opens, so that open is exact when the
	// server refuses one: a token of capacity one (lockOpen, unlockOpen),
	// which a start waiting for it gives up when its ctx ends or the
	// connection is found stuck (unusable is closed then, stall.go).
	opening  chan struct{}
	unusable chan struct{}

	envMu   sync.Mutex
	refused map[string]bool // env names the server refused; envMu protects it
}

// dial connects, then starts the connection's watcher and keepalive.
func (c *conn) dial() {
	p := c.pool
	l, err := p.dialer.dial(p.ctx, c.cfg)
	p.mu.Lock()
	if err != nil {
		c.dialErr = err
		c.group.remove(c)
		c.markDead("dial failed: " + err.Error())
	} else {
		c.link = l
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c.watch()
		}()
		if c.cfg.KeepaliveInterval > 0 {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				c.keepalive()
			}()
		}
	}
	close(c.ready)
	if err == nil {
		p.lingerLocked(c) // every Spawn that wanted it may have given up
	}
	p.mu.Unlock()
	if err != nil {
		c.log.Debug("connection failed", "error", err)
	}
}

// watch waits for the connection to end and records why.
func (c *conn) watch() {
	err := c.link.client.Wait()
	reason := c.transportLoss()
	if reason == "" && err != nil {
		reason = describeLoss(err)
	}
	if c.markDead(reason) {
		c.log.Warn("ssh connection lost", "reason", c.lostReason())
	}
	c.link.close()
	c.pool.forget(c)
}

// keepalive sends keepalive@openssh.com global requests every interval.
// When count of them in a row go unanswered (about interval × (count+1)
// after the server last answered, as OpenSSH's ServerAliveCountMax), the
// connection is closed, which ends its sessions with that reason.
func (c *conn) keepalive() {
	interval, count := c.cfg.KeepaliveInterval, c.cfg.KeepaliveCount
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var pending chan error // a request in flight, or nil
	missed := 0
	for {
		select {
		case <-c.dead:
			return
		case err := <-pending:
			pending = nil
			if err != nil {
				return // the connection is closing; watch reports it
			}
			missed = 0
		case <-ticker.C:
			if pending != nil {
				missed++
				if missed >= count {
					c.markDead(fmt.Sprintf("keepalive unanswered (%d keepalives, %v apart)", count, interval))
					c.log.Warn("ssh connection lost", "reason", c.lostReason())
					c.link.close()
					return
				}
				continue
			}
			pending = make(chan error, 1)
			c.pool.wg.Add(1)
			go func(done chan<- error) {
				defer c.pool.wg.Done()
				// Returns when the server answers or the connection closes.
				_, _, err := c.link.client.SendRequest("keepalive@openssh.com", true, nil)
				done <- err
			}(pending)
		}
	}
}

// shutdown closes a connection on purpose.
func (c *conn) shutdown(reason string) {
	c.markDead(reason)
	if c.link != nil {
		c.link.close()
		c.log.Debug("connection closed", "reason", reason)
	}
}

// markDead records why c died, once, and reports whether this call did.
func (c *conn) markDead(reason string) bool {
	first := false
	c.deadOnce.Do(func() {
		c.lostMu.Lock()
		c.lost = reason
		c.lostMu.Unlock()
		close(c.dead)
		first = true
	})
	return first
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// lostReason says why the connection is gone or going: the recorded
// reason, else the transport's read error (known before x/crypto closes
// the channels), else "". Through a jump host, it names both hosts.
func (c *conn) lostReason() string {
	c.lostMu.Lock()
	reason := c.lost
	c.lostMu.Unlock()
	if reason == "" && c.link != nil {
		reason = c.transportLoss()
	}
	if reason == "" {
		return ""
	}
	where := c.cfg.Target.addr()
	if c.cfg.Jump != nil {
		where += " through jump host " + c.cfg.Jump.addr()
	}
	return fmt.Sprintf("ssh connection to %s lost: %s", where, reason)
}

// transportLoss says why the link's transport stopped reading, or "".
// The jump host's connection comes first: the target's runs in it, so
// when the jump host's fails, the target's tunnel ends too and reads an
// end of file, which said the target had closed the connection and sent
// the operator to the wrong machine. The jump host's read fails before
// the tunnel's, since x/crypto ends the tunnel only once that read has
// failed; a failure of the jump host's connection after the target's
// (closing the link closes it) comes too late to be taken for the cause.
// A jump host that closes the tunnel and then its connection, in order,
// is not told from a tunnel's end: what was seen was only the tunnel's.
func (c *conn) transportLoss() string {
	if jw := c.link.jumpWire; jw != nil {
		if err := jw.readErr(); err != nil {
			if errors.Is(err, io.EOF) {
				return "the jump host closed the connection"
			}
			return "the connection to the jump host failed: " + err.Error()
		}
	}
	err := c.link.wire.readErr()
	switch {
	case err == nil:
		return ""
	case c.link.jumpWire != nil && errors.Is(err, io.EOF):
		// The tunnel ended: the jump host passes on the target's close,
		// and closes the tunnel when its own connection to the target
		// fails.
		return "the target host, or the jump host's connection to it, closed the connection (the connection to the jump host was up)"
	default:
		return describeLoss(err)
	}
}

// describeLoss says in words why a connection read failed.
func describeLoss(err error) string {
	if errors.Is(err, io.EOF) {
		return "the server closed the connection"
	}
	return err.Error()
}

// refusedEnv reports whether the server refused an env request for name
// on this connection before.
func (c *conn) refusedEnv(name string) bool {
	c.envMu.Lock()
	defer c.envMu.Unlock()
	return c.refused[name]
}

func (c *conn) refuseEnv(name string) {
	c.envMu.Lock()
	c.refused[name] = true
	c.envMu.Unlock()
}
