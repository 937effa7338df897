package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

// errPoolClosed: the plugin is stopping.
var errPoolClosed = fmt.Errorf("%w: ssh plugin is stopping", shared.ErrUnavailable)

// pool keeps one SSH connection per environment, shared by all its
// sessions, each of which is a channel on it. A connection is keyed by the
// environment's id and its config's hash, so a changed config gets a new
// connection. It is dialled by the first Spawn that needs it (concurrent
// Spawns wait for that one dial), counted by reference, kept for the
// config's linger after its last session ends, and replaced on the next
// Spawn once it has died.
type pool struct {
	logger hclog.Logger
	dialer *dialer
	ctx    context.Context // cancelled by close; bounds dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of every conn

	mu sync.Mutex
	// mu protects the following, and every conn's refs and lingerTimer.
	conns  map[string]*conn
	closed bool
}

func newPool(logger hclog.Logger, d *dialer) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{logger: logger, dialer: d, ctx: ctx, cancel: cancel, conns: make(map[string]*conn)}
}

// conn is one pooled connection. ready is closed when its dial has ended;
// link or dialErr is set by then. dead is closed when the connection is
// gone, for whatever reason (lost, lingered out, plugin stopping).
type conn struct {
	key  string
	cfg  *config
	pool *pool
	log  hclog.Logger

	ready   chan struct{}
	link    *link // set before ready is closed, when the dial worked
	dialErr error // set before ready is closed, when it failed

	dead     chan struct{}
	deadOnce sync.Once
	lostMu   sync.Mutex
	lost     string // why it died; lostMu protects it

	// Under pool.mu:
	refs        int
	lingerTimer *time.Timer

	envMu   sync.Mutex
	refused map[string]bool // env names the server refused; envMu protects it
}

// acquire returns a live connection for the environment, dialling it if
// needed, and takes a reference on it that release gives back.
func (p *pool) acquire(ctx context.Context, envID string, cfg *config) (*conn, error) {
	key := envID + "\x00" + cfg.hash()
	for attempt := 0; ; attempt++ {
		c, err := p.get(key, envID, cfg)
		if err != nil {
			return nil, err
		}
		select {
		case <-c.ready:
		case <-ctx.Done():
			p.release(c)
			return nil, ctx.Err()
		}
		if c.dialErr != nil {
			p.release(c)
			return nil, c.dialErr
		}
		select {
		case <-c.dead:
			// Died between the lookup and now: dial afresh, once.
			p.release(c)
			if attempt > 0 {
				return nil, fmt.Errorf("%w: %s", shared.ErrUnavailable, c.lostReason())
			}
		default:
			return c, nil
		}
	}
}

// get returns the pooled conn for key with a new reference, creating it
// (and starting its dial) when there is none or it died.
func (p *pool) get(key, envID string, cfg *config) (*conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	c := p.conns[key]
	if c != nil && c.isDead() {
		delete(p.conns, key)
		c = nil
	}
	if c == nil {
		c = &conn{
			key:     key,
			cfg:     cfg,
			pool:    p,
			log:     p.logger.With("environment_id", envID, "host", cfg.Target.String()),
			ready:   make(chan struct{}),
			dead:    make(chan struct{}),
			refused: make(map[string]bool),
		}
		p.conns[key] = c
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c.dial()
		}()
	}
	c.refs++
	if c.lingerTimer != nil {
		c.lingerTimer.Stop()
		c.lingerTimer = nil
	}
	return c, nil
}

// release gives back a reference. The last one arms the linger timer,
// which closes the connection unless a Spawn takes it again first.
func (p *pool) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.refs--
	if c.refs == 0 {
		p.lingerLocked(c)
	}
}

// lingerLocked arms c's linger timer if c is idle, alive and dialled.
// p.mu must be held.
func (p *pool) lingerLocked(c *conn) {
	if c.refs > 0 || c.lingerTimer != nil || c.isDead() {
		return
	}
	select {
	case <-c.ready:
	default:
		return // the dial arms it when it ends
	}
	if c.dialErr != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(c.cfg.Linger, func() {
		p.mu.Lock()
		expired := c.lingerTimer == t && c.refs == 0
		if expired {
			c.lingerTimer = nil
			if p.conns[c.key] == c {
				delete(p.conns, c.key)
			}
		}
		p.mu.Unlock()
		if expired {
			c.shutdown("idle for " + c.cfg.Linger.String() + " after its last session (linger)")
		}
	})
	c.lingerTimer = t
}

// close closes every connection and waits for their goroutines. Sessions
// still open on them end (their channels close); Spawn fails from now on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
		if c.lingerTimer != nil {
			c.lingerTimer.Stop()
			c.lingerTimer = nil
		}
	}
	clear(p.conns)
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		<-c.ready
		c.shutdown("the ssh plugin is stopping")
	}
	p.wg.Wait()
}

// dial connects, then starts the connection's watcher and keepalive.
func (c *conn) dial() {
	p := c.pool
	l, err := p.dialer.dial(p.ctx, c.cfg)
	p.mu.Lock()
	if err != nil {
		c.dialErr = err
		if p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
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
	reason := ""
	if rerr := c.link.wire.readErr(); rerr != nil {
		reason = describeLoss(rerr)
	} else if err != nil {
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

// forget drops c from the pool if it is still there.
func (p *pool) forget(c *conn) {
	p.mu.Lock()
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	if c.lingerTimer != nil {
		c.lingerTimer.Stop()
		c.lingerTimer = nil
	}
	p.mu.Unlock()
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
// the channels), else "".
func (c *conn) lostReason() string {
	c.lostMu.Lock()
	reason := c.lost
	c.lostMu.Unlock()
	if reason == "" && c.link != nil {
		if err := c.link.wire.readErr(); err != nil {
			reason = describeLoss(err)
		}
	}
	if reason == "" {
		return ""
	}
	return fmt.Sprintf("ssh connection to %s lost: %s", c.cfg.Target.addr(), reason)
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
