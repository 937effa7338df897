package main

import (
	"errors"
	"time"
)

// A server can go on answering keepalives while it never answers a
// session's channel open, pty-req, env or exec request: sshd stuck on a
// full disk or a hung PAM module, a middlebox that drops one direction of
// a channel. x/crypto's requests take no context, so a Spawn that runs out
// of its connect_timeout leaves its start blocked on the connection, and
// the start keeps its reference: the connection never lingered out, and
// every later Spawn of the environment, sent to the same connection, waited
// out its own connect_timeout behind the first. So a request the server
// leaves unanswered for connect_timeout after it was sent makes the
// connection stuck: no new session goes to it, and it is closed as soon as
// it holds no started session (at once if it holds none), which also ends
// the blocked starts. Later Spawns dial another connection, as do the
// starts that waited behind the stalled one and still have time.
//
// Only the server's silence counts, not the Spawn's deadline: a Spawn's
// connect_timeout also covers its dial and its wait for the turn to open
// a channel, and a Spawn that spent most of it on a slow login must not
// have a healthy connection, which answers its open a moment later, taken
// for a stuck one.

// watchStall marks c stuck unless the returned stop is called within
// the config's connect_timeout. Call it right as a request the server must
// answer is sent, and stop it once answered.
func (c *conn) watchStall() (stop func() bool) {
	return time.AfterFunc(c.cfg.ConnectTimeout, c.stalled).Stop
}

// stalled marks c stuck, and closes it if no started session is on it.
func (c *conn) stalled() {
	p := c.pool
	p.mu.Lock()
	if c.stuck || c.isDead() {
		p.mu.Unlock()
		return
	}
	c.stuck = true
	close(c.unusable)
	sessions := c.sessions
	p.mu.Unlock()
	if sessions == 0 {
		c.log.Warn("the server left a session's start unanswered; closing the connection", "connect_timeout", c.cfg.ConnectTimeout.String())
		c.shutdown(stuckReason)
		return
	}
	c.log.Warn("the server left a session's start unanswered; no new session goes to this connection, which closes when its sessions end",
		"connect_timeout", c.cfg.ConnectTimeout.String(), "sessions", sessions)
}

// errConnStuck: a start waited for its turn to open a channel on a
// connection found stuck meanwhile. The Spawn goes on to another.
var errConnStuck = errors.New("the server left a session's start unanswered on the connection")

// stuckReason is why a stuck connection was closed.
const stuckReason = "the server left a session's start unanswered for connect_timeout"

// isStuck reports whether c was found stuck.
func (p *pool) isStuck(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.stuck
}

// sessionStarted counts a session started on c: from the moment the
// server accepted its exec request, since its command may run from then
// on, even before its start marker has come. A stall of another start
// must not close the connection under it, nor have its Spawn retried on
// another connection, which would run the command twice.
func (p *pool) sessionStarted(c *conn) {
	p.mu.Lock()
	c.sessions++
	p.mu.Unlock()
}

// sessionGone undoes sessionStarted's count for a session of c that
// closed, and closes c if it is stuck and held no other. The session's
// reference is left to its holder.
func (p *pool) sessionGone(c *conn) {
	p.mu.Lock()
	c.sessions--
	closing := c.stuck && c.sessions == 0 && !c.isDead()
	p.mu.Unlock()
	if closing {
		c.log.Debug("closing the stuck connection: its last session ended")
		c.shutdown(stuckReason)
	}
}

// sessionEnded counts a started session of c closed, closes c if it is
// stuck and held no other, and gives back the session's reference.
func (p *pool) sessionEnded(c *conn) {
	p.sessionGone(c)
	p.release(c)
}
