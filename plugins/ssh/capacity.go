package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// Sessions per connection. A server limits how many sessions one
// connection holds (OpenSSH's MaxSessions, 10 by default) and refuses the
// channel of one more. Channel opens on a connection go one at a time, so
// that when the server refuses one the count of open channels is exact: a
// refusal on a connection that holds others means it is full, and that
// count is what the server allows; a refusal on an empty one is the
// server refusing sessions, an error. Once the group knows what the
// server allows, a refusal below it is first taken for a slot the server
// has not freed yet, and retried for a while (openSession). A refused
// pty-req or exec request on a connection that holds others counts as
// full too (a server out of terminals or processes for this login).

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
//
// A refusal while c holds fewer sessions than the server allowed on a
// connection before (none, even) is a slot not yet freed: OpenSSH frees a
// session's slot once it has reaped the session's processes, which under
// load can come after it confirmed the channel's close. Such a refusal is
// retried every slotRetry until slotFreeWait has passed (within ctx),
// without holding the turn to open meanwhile, before c counts as full (or, holding
// none, the refusal is the error it is).
func (c *conn) openSession(ctx context.Context) (*ssh.Session, error) {
	deadline := time.Now().Add(slotFreeWait)
	for {
		sess, others, err := c.tryOpen(ctx)
		if err == nil {
			return sess, nil
		}
		if errors.Is(err, errConnStuck) || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		var oce *ssh.OpenChannelError
		refused := errors.As(err, &oce) && c.lostReason() == ""
		if refused && others < c.knownPerConn() && time.Now().Before(deadline) && !c.isFull() {
			t := time.NewTimer(slotRetry)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w (the server was refusing session channels: %s)", ctx.Err(), oce.Message)
			}
		}
		if !refused || others == 0 {
			return nil, c.sessionError("open a session channel", err)
		}
		c.sessionRefused(others)
		return nil, fmt.Errorf("%w: %s refused a session channel with %d open (%s)", errConnFull, c.cfg.Target.addr(), others, oce.Message)
	}
}

// tryOpen opens a session channel on c, counting it, or returns the
// server's refusal with the count of channels open when it came. Opens
// go one at a time (lockOpen), so that count is exact; waiting for its
// turn ends with ctx, or with errConnStuck.
func (c *conn) tryOpen(ctx context.Context) (*ssh.Session, int, error) {
	if err := c.lockOpen(ctx); err != nil {
		return nil, 0, err
	}
	defer c.unlockOpen()
	stop := c.watchStall() // from the open's sending, not the wait for the turn
	sess, err := c.link.client.NewSession()
	stop()
	if err != nil {
		return nil, c.openCount(), err
	}
	c.sessionOpened()
	return sess, 0, nil
}

// lockOpen takes c's turn to open a channel, waiting for the open under
// way, if any. It gives up when ctx ends, or with errConnStuck when that
// open is found stuck: the server is not answering opens on c.
func (c *conn) lockOpen(ctx context.Context) error {
	// A free turn is taken even when ctx has just ended: select picks at
	// random among ready cases, and a refusal's retry, whose ctx ended,
	// must still say the server was refusing.
	select {
	case c.opening <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.opening <- struct{}{}:
		return nil
	case <-c.unusable:
		return fmt.Errorf("%w: %s", errConnStuck, c.cfg.Target.addr())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlockOpen ends c's turn to open a channel.
func (c *conn) unlockOpen() { <-c.opening }

// isFull reports whether c was marked full (a Spawn gave up on it
// meanwhile).
func (c *conn) isFull() bool {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	return c.full
}

// How long, and how often, openSession retries a refusal that a slot not
// yet freed explains.
const (
	slotFreeWait = 2 * time.Second
	slotRetry    = 50 * time.Millisecond
)

// knownPerConn returns how many sessions the server allowed on one of
// the group's connections, 0 if it never refused one.
func (c *conn) knownPerConn() int {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	return c.group.perConn
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
