package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

// errPoolClosed: the plugin is stopping.
var errPoolClosed = fmt.Errorf("%w: ssh plugin is stopping", shared.ErrUnavailable)

// pool keeps the SSH connections of each environment, shared by its
// sessions, each of which is a channel on one of them. An environment's
// connections form a group, keyed by the environment's id and its config's
// hash, so a changed config gets new connections. A session goes to the
// first connection of its group with room; when there is none, the pool
// dials another, up to the config's max_connections. Concurrent Spawns
// wait for the dial of the connection they were given. A server limits
// the sessions of one connection (OpenSSH's MaxSessions, 10 by default)
// by refusing to open one more channel: the connection is then full, the
// group learns how many sessions a connection holds, and the Spawn moves
// on to another connection (see startSession). Each connection is
// counted by reference, kept for the config's linger after its last
// session ends, and replaced on a later Spawn once it has died.
type pool struct {
	logger hclog.Logger
	dialer *dialer
	ctx    context.Context // cancelled by close; bounds dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of every conn

	mu sync.Mutex
	// mu protects the following, every group, and the fields of every
	// conn that say so.
	groups map[string]*group
	closed bool
}

func newPool(logger hclog.Logger, d *dialer) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{logger: logger, dialer: d, ctx: ctx, cancel: cancel, groups: make(map[string]*group)}
}

// group is the connections of one environment and config, in the order
// they were dialled. pool.mu protects it.
type group struct {
	key   string
	pool  *pool
	conns []*conn
	// perConn is how many sessions the server lets one connection hold,
	// learned when it refused one; 0 until then.
	perConn int
}

// remove drops c from the group, and the group from the pool once it is
// empty. pool.mu must be held.
func (g *group) remove(c *conn) {
	if i := slices.Index(g.conns, c); i >= 0 {
		g.conns = slices.Delete(g.conns, i, i+1)
	}
	if len(g.conns) == 0 && g.pool.groups[g.key] == g {
		delete(g.pool.groups, g.key)
	}
}

// hasRoom reports whether a session may go to c. pool.mu must be held.
func (g *group) hasRoom(c *conn) bool {
	return !c.isDead() && !c.full && !c.stuck && (g.perConn == 0 || c.refs < g.perConn)
}

// acquire returns a live connection of the environment with room for a
// session, dialling one if needed, and takes a reference on it that
// release gives back.
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
			// Died between the lookup and now: look again, once.
			p.release(c)
			if attempt > 0 {
				return nil, fmt.Errorf("%w: %s", shared.ErrUnavailable, c.lostReason())
			}
		default:
			return c, nil
		}
	}
}

// get returns a conn of the group key with room, with a new reference,
// creating one (and starting its dial) when none has room.
func (p *pool) get(key, envID string, cfg *config) (*conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	g := p.groups[key]
	if g == nil {
		g = &group{key: key, pool: p}
		p.groups[key] = g
	}
	var c *conn
	for _, cand := range g.conns {
		if g.hasRoom(cand) {
			c = cand
			break
		}
	}
	if c == nil {
		live := 0
		for _, cand := range g.conns {
			if !cand.isDead() {
				live++
			}
		}
		if live >= cfg.MaxConnections {
			return nil, g.fullError(cfg)
		}
		c = &conn{
			group:    g,
			cfg:      cfg,
			pool:     p,
			log:      p.logger.With("environment_id", envID, "host", cfg.Target.String()),
			ready:    make(chan struct{}),
			dead:     make(chan struct{}),
			refused:  make(map[string]bool),
			opening:  make(chan struct{}, 1),
			unusable: make(chan struct{}),
		}
		g.conns = append(g.conns, c)
		if live > 0 {
			c.log.Debug("opening another connection", "connections", live+1, "sessions_per_connection", g.perConn)
		}
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

// fullError is the error of a Spawn that finds every connection of the
// group full. pool.mu must be held.
func (g *group) fullError(cfg *config) error {
	stuck := 0
	for _, c := range g.conns {
		if c.stuck && !c.isDead() {
			stuck++
		}
	}
	if stuck > 0 {
		return fmt.Errorf("%w: ssh: all %d connections to %s (max_connections) are in use, %d of them by sessions the server no longer starts others beside; they close when those sessions end",
			shared.ErrUnavailable, cfg.MaxConnections, cfg.Target.addr(), stuck)
	}
	per := "as many sessions as the server allows"
	if g.perConn > 0 {
		per = fmt.Sprintf("%d sessions, as many as the server allows on one", g.perConn)
	}
	return fmt.Errorf("%w: ssh: all %d connections to %s (max_connections) hold %s (its MaxSessions); raise max_connections or the server's MaxSessions",
		shared.ErrUnavailable, cfg.MaxConnections, cfg.Target.addr(), per)
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
			c.group.remove(c)
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
	var conns []*conn
	for _, g := range p.groups {
		for _, c := range g.conns {
			conns = append(conns, c)
			if c.lingerTimer != nil {
				c.lingerTimer.Stop()
				c.lingerTimer = nil
			}
		}
	}
	clear(p.groups)
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		<-c.ready
		c.shutdown("the ssh plugin is stopping")
	}
	p.wg.Wait()
}

// forget drops c from its group if it is still there.
func (p *pool) forget(c *conn) {
	p.mu.Lock()
	c.group.remove(c)
	if c.lingerTimer != nil {
		c.lingerTimer.Stop()
		c.lingerTimer = nil
	}
	p.mu.Unlock()
}
