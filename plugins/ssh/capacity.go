package main

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// Sessions per connection. A server limits how many sessions one
// connection holds (OpenSSH's MaxSessions, 10 by default) and refuses the
// channel of one more. Channel opens on a connection go one at a time, so
// that when the server refuses one the count of open channels is exact: a
// refusal on a connection that holds others means it is full, and that
// count is what the server allows; a refusal on an empty one is the
// server refusing sessions, an error. A refused pty-req or exec request
// on a connection that holds others counts as full too (a server out of
// terminals or processes for this login).

// errConnFull is what a session start returns when the server refused
// the session on a connection that holds others: its per-connection
// limit. The Spawn tries another connection.
var errConnFull = errors.New("the connection holds as many sessions as the server allows")

// sessionOpened counts a session channel opened on c.
func (c *conn) sessionOpened() {
	p := c.pool
	p.mu.Lock()
	c.open++
	if c.group.perConn > 0 && c.open > c.group.perConn {
		c.group.perConn = c.open // a refusal came early (channels not yet freed)
	}
	p.mu.Unlock()
}

// sessionRefused records that the server refused a session on c, which
// has others open besides: others is how many. c is full until one of
// them ends.
func (c *conn) sessionRefused(others int) {
	p := c.pool
	p.mu.Lock()
	c.full = true
	learned := c.group.perConn == 0
	c.group.perConn = max(c.group.perConn, others)
	p.mu.Unlock()
	if learned {
		c.log.Info("the server refused a session on a connection holding others; opening more connections as needed",
			"sessions_per_connection", others, "max_connections", c.cfg.MaxConnections)
	}
}

// sessionClosed counts a session channel of c closed; c has room again.
func (c *conn) sessionClosed() {
	p := c.pool
	p.mu.Lock()
	c.open--
	c.full = false
	p.mu.Unlock()
}

// openCount returns how many session channels are open on c.
func (c *conn) openCount() int {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	return c.open
}

// openSession opens a session channel on c and counts it. When the
// server refuses it and c holds other sessions, c is full and the error
// wraps errConnFull.
func (c *conn) openSession() (*ssh.Session, error) {
	c.openMu.Lock()
	defer c.openMu.Unlock()
	sess, err := c.link.client.NewSession()
	if err == nil {
		c.sessionOpened()
		return sess, nil
	}
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) && c.lostReason() == "" {
		if others := c.openCount(); others > 0 {
			c.sessionRefused(others)
			return nil, fmt.Errorf("%w: %s refused a session channel with %d open (%s)", errConnFull, c.cfg.Target.addr(), others, oce.Message)
		}
	}
	return nil, c.sessionError("open a session channel", err)
}

// startError explains a failed pty-req or exec request on a session
// channel c opened; when the server refused it while c holds other
// sessions, c is full and the error wraps errConnFull.
func (c *conn) startError(step string, err error) error {
	if c.lostReason() == "" && !errors.Is(err, io.EOF) {
		if others := c.openCount() - 1; others > 0 {
			c.sessionRefused(others)
			return fmt.Errorf("%w: %s refused to %s with %d sessions open", errConnFull, c.cfg.Target.addr(), step, others)
		}
	}
	return c.sessionError(step, err)
}
