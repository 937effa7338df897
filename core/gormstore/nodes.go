package gormstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
)

// The node registry. Several servers may share one PostgreSQL database as
// the nodes of a cluster: each registers under its name in the nodes table
// and holds its row by a lease it renews. Leases are written and judged
// with the database's clock (now()), never a node's, so that clocks that
// disagree between machines change nothing. A lease that expired means the
// node is not known to run: its row may be taken over by a process of the
// same name, and the node lists as unhealthy. Two live processes never
// hold one name: a second one is refused (ErrNodeRunning) until the
// first one's lease expires or the first one releases it (Release), or
// until the first one is seen to be gone on this machine (a node killed
// here and restarted at once takes its row over: nodetakeover.go).
//
// A node that stops leaving its sessions running (the default stop) is
// not lost: Release marks its row released, so that it lists as unhealthy
// and its name is free at once, but leaves its lease to run out as if
// unrenewed, so that the other nodes record its sessions node_lost only
// then (MarkLostNodes), not at once: a node restarted within its lease
// takes them up as they were, and clients meanwhile are told the node is
// lost (503, which they retry), not that the sessions ended.
//
// A cluster and a single server (Claim) exclude each other on one
// database (nodesclaim.go).

// Node lease defaults.
const (
	DefaultNodeLeaseTTL = 10 * time.Second
	DefaultNodeRenewal  = 2 * time.Second
)

var (
	// ErrNodeRunning is wrapped by the error of a RegisterNode refused
	// because another live process holds the node's name.
	ErrNodeRunning = errors.New("the node is already running")
	// ErrNodesUnsupported is wrapped by the error of RegisterNode,
	// ListNodes and RemoveNode on a database other than PostgreSQL.
	ErrNodesUnsupported = errors.New("several servers on one database need PostgreSQL")
)

// NodeOptions describe a node that registers. Name and URL are required;
// the zero value of the others means their default.
type NodeOptions struct {
	// Name is the node's name, unique in the cluster.
	Name string
	// URL is where other nodes and clients reach the node.
	URL string
	// Version is the node's ptyhost version, for the listing.
	Version string
	// ClusterSecret is the secret the nodes share (core/api's
	// ClusterOptions.Secret). Only a fingerprint of it is recorded
	// (nodesecret.go), so that the nodes can tell one registered with
	// another secret; RegisterNode keeps nothing of it. Empty records
	// none: the node's secret lists as unknown.
	ClusterSecret string
	// Instance tells this process from every other that ever held the
	// name, so that a renewal can tell its row was taken over; random when
	// empty. A process registering again with its own instance takes its
	// row back even while the lease runs.
	Instance string
	// Hostname, PID and HostInstance name the node's process, as Owner's
	// Hostname, PID and Instance name a single server's: a process of the
	// name that registers while this one's lease runs takes the row over
	// at once if they say this process ran on its machine, in its boot
	// and pid namespace, and is gone (nodetakeover.go). Filled in when
	// zero: os.Hostname, os.Getpid and the machine's boot and pid
	// namespace, "" where unknown.
	Hostname     string
	PID          int
	HostInstance string
	// LeaseTTL is how long the lease holds without a renewal. Zero means
	// DefaultNodeLeaseTTL.
	LeaseTTL time.Duration
	// Renewal is how often the lease is renewed; keep it well under
	// LeaseTTL. Zero means DefaultNodeRenewal.
	Renewal time.Duration
}

// nodeModel is a row of nodes.
type nodeModel struct {
	Name           string    `gorm:"column:name;primaryKey"`
	URL            string    `gorm:"column:url;not null"`
	Version        string    `gorm:"column:version;not null;default:''"`
	Instance       string    `gorm:"column:instance;not null"`
	StartedAt      time.Time `gorm:"column:started_at;not null;autoCreateTime:false"`
	LeaseExpiresAt time.Time `gorm:"column:lease_expires_at;not null;index"`
	// Released says the process that holds the row stopped (Release):
	// the node does not run, whatever the lease says, which only bounds
	// how soon its sessions are recorded node_lost.
	Released bool `gorm:"column:released;not null;default:false"`
	// Ready says the node has taken up the sessions it had kept
	// (NodeLease.Ready): until then it lists as unhealthy, so that the
	// other nodes do not take a session of its recorded node_lost for
	// one no plugin kept, while it is taking it up. Rows of servers
	// older than it are ready.
	Ready bool `gorm:"column:ready;not null;default:true"`
	// SecretFingerprint is the fingerprint of the node's cluster secret
	// (secretFingerprint), written by the instance FingerprintInstance:
	// it counts only while that instance holds the row, since a ptyhost
	// from before them, taking the row over, leaves both as they were.
	// Rows from before them have none: their secret lists as unknown.
	SecretFingerprint   string `gorm:"column:secret_fingerprint;not null;default:''"`
	FingerprintInstance string `gorm:"column:fingerprint_instance;not null;default:''"`
	// Hostname, PID and HostInstance name the process that holds the
	// row (NodeOptions), written by the instance ProcessInstance, and
	// counting, as the fingerprint does, only while that instance holds
	// the row. Rows from before them have none: their holder is never
	// known to be gone before its lease expires (nodetakeover.go).
	Hostname        string `gorm:"column:hostname;not null;default:''"`
	PID             int    `gorm:"column:pid;not null;default:0"`
	HostInstance    string `gorm:"column:host_instance;not null;default:''"`
	ProcessInstance string `gorm:"column:process_instance;not null;default:''"`
}

func (nodeModel) TableName() string { return "nodes" }

// postgres reports whether the store's database is PostgreSQL, the only
// one that keeps nodes.
func (s *DB) postgres() bool { return s.db.Dialector.Name() == "postgres" }

// interval is d as a PostgreSQL interval expression's argument: whole
// microseconds, multiplied by interval '1 microsecond' in the statements.
func interval(d time.Duration) int64 { return d.Microseconds() }

// RegisterNode registers o as a node of the cluster, with a lease renewed
// every o.Renewal until Release. It inserts the node's row, or takes it
// over if its lease expired, it was released, it is o.Instance's own, or
// its holder was a process of this machine that is gone (goneHolder),
// which it logs as a warning naming that process.
// It returns an error wrapping ErrNodeRunning, naming the URL, when
// another process holds a live lease on the name; one wrapping ErrOwned
// when a single server (Claim) owns the database; one wrapping
// ErrNodesUnsupported on SQLite.
//
// If a renewal finds the row taken over by another process or its lease
// expired, or none succeeded for the TTL (judged conservatively with this
// process's clock), the error is logged, renewals stop, and Lost is
// closed. A renewal that fails otherwise is logged and tried again at the
// next one. After each renewal the node marks the sessions of lost nodes
// (MarkLostNodes).
//
// With o.ClusterSecret, the row records a fingerprint of it, and the
// node logs an error for each live node it finds, then and after its
// renewals, registered with a different one (nodesecret.go).
func (s *DB) RegisterNode(ctx context.Context, o NodeOptions) (*NodeLease, error) {
	if !s.postgres() {
		return nil, fmt.Errorf("store: register node %q: %w, not %s", o.Name, ErrNodesUnsupported, s.db.Dialector.Name())
	}
	if o.Name == "" || o.URL == "" {
		return nil, fmt.Errorf("store: register node: a name and a URL are required: %w", core.ErrInvalidArgument)
	}
	if o.Instance == "" {
		o.Instance = rand.Text()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultNodeLeaseTTL
	}
	if o.Renewal <= 0 {
		o.Renewal = DefaultNodeRenewal
	}
	o.completeProcess()
	// The fingerprint is computed before the transaction, which holds the
	// nodes' advisory lock: the KDF takes a moment.
	var fingerprint string
	if o.ClusterSecret != "" {
		id, err := s.clusterID(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: register node %q: %w", o.Name, err)
		}
		fingerprint = secretFingerprint(o.ClusterSecret, id)
		o.ClusterSecret = ""
	}
	// The lease runs from no earlier than this, by the database's clock:
	// the local deadline the renewals keep is never later than its.
	sent := time.Now()
	var prev *nodeHolder
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockNodesAndClaim(tx); err != nil {
			return err
		}
		if err := s.refuseClaimed(tx); err != nil {
			return err
		}
		// The row, locked from here on, may be held by a process of this
		// machine that is gone: its instance is then one the upsert
		// takes the row from, as from this instance's own.
		var err error
		if prev, err = goneHolder(tx, o); err != nil {
			return err
		}
		gone := o.Instance
		if prev != nil {
			gone = prev.Instance
		}
		// The row is inserted, or taken over when its lease expired, it
		// was released (its process stopped), it is this instance's, or
		// its holder is gone; else RETURNING returns nothing.
		var taken []string
		err = tx.Raw(`INSERT INTO nodes (name, url, version, instance, started_at, lease_expires_at, released, ready,
				secret_fingerprint, fingerprint_instance, hostname, pid, host_instance, process_instance)
			VALUES (?, ?, ?, ?, now(), now() + ? * interval '1 microsecond', false, false, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, version = EXCLUDED.version,
				instance = EXCLUDED.instance, started_at = EXCLUDED.started_at,
				lease_expires_at = EXCLUDED.lease_expires_at, released = false, ready = false,
				secret_fingerprint = EXCLUDED.secret_fingerprint, fingerprint_instance = EXCLUDED.fingerprint_instance,
				hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, host_instance = EXCLUDED.host_instance,
				process_instance = EXCLUDED.process_instance
			WHERE nodes.lease_expires_at <= now() OR nodes.released OR nodes.instance = EXCLUDED.instance
				OR nodes.instance = ?
			RETURNING name`,
			o.Name, o.URL, o.Version, o.Instance, interval(o.LeaseTTL), fingerprint, o.Instance,
			o.Hostname, o.PID, o.HostInstance, o.Instance, gone).Scan(&taken).Error
		if err != nil {
			return err
		}
		if len(taken) == 1 {
			return nil
		}
		var url string
		var left float64 // seconds
		row := tx.Raw(`SELECT url, extract(epoch FROM lease_expires_at - now()) FROM nodes WHERE name = ?`, o.Name).Row()
		if err := row.Scan(&url, &left); err != nil {
			return err
		}
		expires := time.Duration(left * float64(time.Second)).Round(time.Millisecond)
		return fmt.Errorf("%w: node %s is already running at %s (its lease expires in %v unless renewed): "+
			"stop it, or give this server another --node-name", ErrNodeRunning, o.Name, url, expires)
	})
	if err != nil {
		if errors.Is(err, ErrNodeRunning) || errors.Is(err, ErrOwned) {
			return nil, err
		}
		return nil, fmt.Errorf("store: register node %q: %w", o.Name, err)
	}
	if prev != nil {
		s.logTakeover(o, prev)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &NodeLease{
		s: s, opts: o, log: s.log.With("component", "store", "node", o.Name),
		lost: make(chan struct{}), done: make(chan struct{}), ctx: rctx, cancel: cancel,
		fingerprint: fingerprint, reported: map[string]string{},
	}
	s.self.Store(&nodeSelf{name: o.Name, instance: o.Instance, fingerprint: fingerprint, ready: &l.ready})
	l.checkSecrets(ctx, true)
	go l.renew(sent)
	return l, nil
}

// ListNodes returns every registered node, sorted by name: healthy while
// its lease has not expired by the database's clock and it has not been
// released, with the count of its sessions recorded as STARTING, ACTIVE
// or IDLE, and, once this process has registered as a node, whether its
// cluster secret is this node's (compareSecrets).
func (s *DB) ListNodes(ctx context.Context) ([]core.Node, error) {
	if !s.postgres() {
		return nil, fmt.Errorf("store: list nodes: %w", ErrNodesUnsupported)
	}
	var rows []struct {
		Name, URL, Version string
		Healthy            bool
		Sessions           int
		Fingerprint        string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT n.name, n.url, n.version, n.lease_expires_at > now() AND NOT n.released AND n.ready AS healthy,
			(SELECT count(*) FROM sessions s WHERE s.node = n.name AND s.status IN ?) AS sessions,
			`+registeredFingerprint+` AS fingerprint
		FROM nodes n ORDER BY n.name`,
		statusNames([]core.Status{core.StatusStarting, core.StatusActive, core.StatusIdle})).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	self := s.self.Load()
	nodes := make([]core.Node, len(rows))
	for i, r := range rows {
		nodes[i] = core.Node{Name: r.Name, URL: r.URL, Healthy: r.Healthy, Sessions: r.Sessions, Version: r.Version}
		if self != nil {
			nodes[i].ClusterSecret = compareSecrets(self.fingerprint, r.Fingerprint)
		}
	}
	return nodes, nil
}

var _ core.NodeLister = (*DB)(nil)

// NodeLease is a node's registration, from RegisterNode. Its methods are
// safe for concurrent use.
type NodeLease struct {
	s    *DB
	opts NodeOptions
	log  *slog.Logger

	lost     chan struct{} // closed when another process took the row over
	done     chan struct{} // closed when renew returned
	ctx      context.Context
	cancel   context.CancelFunc // stops renew
	lostOnce sync.Once
	ready    atomic.Bool // Ready was called: renewals keep the row ready

	// fingerprint is the fingerprint of the node's cluster secret, ""
	// without one; reported holds, by name, the other nodes' differing
	// fingerprints already logged (checkSecrets).
	fingerprint string
	reported    map[string]string
}

// Instance returns the instance the node registered with.
func (l *NodeLease) Instance() string { return l.opts.Instance }

// Lost returns a channel closed when this process no longer holds the
// node's lease: another process took its row over, or the lease expired
// before it could be renewed (the other nodes may then record its
// sessions as node_lost). The lease is not renewed after.
func (l *NodeLease) Lost() <-chan struct{} { return l.lost }

// Ready marks the node ready, once it has taken up the sessions its
// plugins kept (core's Reconcile): it lists as healthy from then on, and
// a session of it still recorded node_lost is one no plugin kept. A
// registered node lists as unhealthy until then. If the update fails, the
// next renewal makes it.
func (l *NodeLease) Ready(ctx context.Context) error {
	l.ready.Store(true)
	err := l.s.renewalDB().WithContext(ctx).Exec(`UPDATE nodes SET ready = true WHERE name = ? AND instance = ?`,
		l.opts.Name, l.opts.Instance).Error
	if err != nil {
		return fmt.Errorf("store: mark node %q ready: %w", l.opts.Name, err)
	}
	return nil
}

// Release stops the renewals and marks the row released, if it is still
// this instance's, so that the node lists as unhealthy and a process of
// the same name may start at once. The row stays. The lease runs out as
// if unrenewed while the node has sessions recorded live, those a stop
// left running in their plugins (core's Detach): they are recorded
// node_lost only when it has (MarkLostNodes), and a node restarted before
// takes them up as they are. A node without any, whose stop hung them up,
// has its lease expired at once. It is safe to call more than once.
func (l *NodeLease) Release(ctx context.Context) error {
	l.cancel()
	<-l.done
	err := l.s.renewalDB().WithContext(ctx).Exec(`UPDATE nodes SET released = true,
			lease_expires_at = CASE WHEN EXISTS (SELECT 1 FROM sessions s WHERE s.node = nodes.name AND s.status IN ?)
				THEN lease_expires_at ELSE least(lease_expires_at, now()) END
		WHERE name = ? AND instance = ?`,
		liveStatuses, l.opts.Name, l.opts.Instance).Error
	if err != nil {
		return fmt.Errorf("store: release node %q: %w", l.opts.Name, err)
	}
	return nil
}

// renew renews the lease every Renewal until Release, or until the lease
// is lost: its row was taken over by another process, or a renewal could
// not reach the database in time. The lease holds until sent plus
// LeaseTTL, by this process's clock, at the earliest: sent is when the
// statement that set it last was sent, and the database set it later; the
// node gives it up a renewal period before that (giveUpAt).
// After each renewal it marks the sessions of the nodes whose leases
// expired as lost (MarkLostNodes), and checks the live nodes' cluster
// secrets (checkSecrets). All of it goes through the renewal pool
// (pool.go): requests that exhaust the store's own pool, hung on a lock,
// do not hold it up.
func (l *NodeLease) renew(sent time.Time) {
	defer close(l.done)
	t := time.NewTicker(l.opts.Renewal)
	defer t.Stop()
	// The node gives its lease up one renewal period before it could
	// expire in the database, on a timer of its own rather than the next
	// tick, so that it is stopping before any other node can sweep it.
	giveUp := time.NewTimer(time.Until(l.giveUpAt(sent)))
	defer giveUp.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-giveUp.C:
		}
		deadline := l.giveUpAt(sent)
		if !time.Now().Before(deadline) {
			l.log.Error("the node's lease expired before it could be renewed (the database was unreachable or this process stalled); "+
				"the other nodes may record its sessions as node_lost", "lease_ttl", l.opts.LeaseTTL, "last_renewed", time.Since(sent).Round(time.Millisecond))
			l.lose()
			return
		}
		// A renewal that would land past the deadline is of no use: the
		// lease is lost then, whatever the database answers.
		ctx, cancel := context.WithDeadline(l.ctx, deadline)
		attempt := time.Now()
		res := l.s.renewalDB().WithContext(ctx).Exec(`UPDATE nodes SET lease_expires_at = now() + ? * interval '1 microsecond', ready = ready OR ?
			WHERE name = ? AND instance = ? AND lease_expires_at > now()`, interval(l.opts.LeaseTTL), l.ready.Load(), l.opts.Name, l.opts.Instance)
		cancel()
		switch {
		case res.Error == nil && res.RowsAffected > 0:
			sent = attempt
			giveUp.Reset(time.Until(l.giveUpAt(sent)))
		case res.Error == nil:
			l.log.Error("this node's lease expired, or another process took its registration over; no longer renewing it",
				"instance", l.opts.Instance)
			l.lose()
			return
		case l.ctx.Err() != nil:
			return
		default:
			l.log.Warn("renewing the node's lease failed; will retry", "err", res.Error, "lease_ttl", l.opts.LeaseTTL)
			continue
		}
		l.markLost()
		l.checkSecrets(l.ctx, false)
	}
}

// lose closes Lost.
func (l *NodeLease) lose() { l.lostOnce.Do(func() { close(l.lost) }) }

// giveUpAt is when a lease last set by a statement sent at sent is taken
// as lost: a renewal period before it could expire in the database
// (sent + LeaseTTL at the earliest), and never before sent.
func (l *NodeLease) giveUpAt(sent time.Time) time.Time {
	return sent.Add(max(l.opts.LeaseTTL-l.opts.Renewal, 0))
}

// markLost marks the sessions of the nodes whose leases expired as lost,
// within a renewal period; a failure is logged, and the next renewal
// tries again.
func (l *NodeLease) markLost() {
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.Renewal)
	defer cancel()
	marked, err := l.s.markLostNodes(ctx, l.s.renewalDB())
	if err != nil {
		if l.ctx.Err() == nil {
			l.log.Warn("recording the sessions of lost nodes failed; will retry", "err", err)
		}
		return
	}
	for node, ids := range marked {
		if node == "" {
			l.log.Warn("no node took up the sessions of the single server from before the cluster: recorded as ERROR node_lost", "sessions", len(ids))
			continue
		}
		l.log.Warn("a node's lease expired: its sessions recorded as ERROR node_lost", "lost_node", node, "sessions", len(ids))
	}
}
