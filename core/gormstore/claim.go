package gormstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Ownership of the database. One database serves one ptyhost server at a
// time: a server that starts takes up the sessions the store holds as
// live, so two servers on one database would both take them up. A server
// claims the database before it does (Claim): the claim is one row of
// server_owner, renewed by a heartbeat, that other servers respect until
// it expires (LeaseTTL without a heartbeat), or until its process is seen
// to be gone on this machine. Heartbeats are stamped and judged with each
// server's own clock (Options.Now), so servers on different machines need
// clocks that agree to well within the TTL.

// ErrOwned is wrapped by the error of a Claim refused because another
// server owns the database.
var ErrOwned = errors.New("the database is owned by another ptyhost server")

// ErrClaimLost is wrapped by the error of a session write refused because
// this server's claim on the database is lost (Claim.Lost): another
// server may own its sessions' rows now.
var ErrClaimLost = errors.New("this server's claim on the database is lost")

// Lease defaults.
const (
	DefaultLeaseTTL     = 15 * time.Second
	DefaultLeaseRenewal = 5 * time.Second
)

// leaseTimes are a store's lease settings, defaults applied.
type leaseTimes struct {
	ttl, renewal time.Duration
}

func (o Options) leaseTimes() leaseTimes {
	l := leaseTimes{ttl: o.LeaseTTL, renewal: o.LeaseRenewal}
	if l.ttl <= 0 {
		l.ttl = DefaultLeaseTTL
	}
	if l.renewal <= 0 {
		l.renewal = DefaultLeaseRenewal
	}
	return l
}

// Owner describes a server that claims the database. Claim fills in the
// fields left zero.
type Owner struct {
	// DataDir is the server's data directory, named to the operator of a
	// server that is refused.
	DataDir string
	// NodeID tells this claim from every other; random when empty.
	NodeID string
	// Hostname is the name of the server's machine; os.Hostname when
	// empty.
	Hostname string
	// PID is the server's process id; os.Getpid when zero.
	PID int
	// Instance names the machine's boot and the server's pid namespace
	// (Linux: boot_id and /proc/self/ns/pid); a pid names the same process
	// only within one instance. Filled in when empty; "" where unknown.
	Instance string
	// StartedAt is when the server claimed the database; the store's
	// clock when zero.
	StartedAt time.Time
}

// ownerSlot is the primary key of server_owner's one row.
const ownerSlot = 1

// errClaimRace says another server changed the owner row between this
// claim's read and its write; the claim tries again.
var errClaimRace = errors.New("the owner row changed while claiming it")

// claimAttempts bounds how often Claim tries again after a race.
const claimAttempts = 3

// Claim makes this server the owner of the database, and keeps it so by a
// heartbeat every LeaseRenewal until Release. It succeeds when no server
// owns the database, when o already does (same NodeID), or when the owner
// is gone: its heartbeat is older than LeaseTTL, or it ran on this machine
// (same hostname) and its process no longer exists (a server killed here
// is taken over at once). Otherwise it returns an error wrapping ErrOwned
// that names the owner. On PostgreSQL it also refuses, with ErrOwned, a
// database that nodes of a cluster hold live leases on (nodes.go).
//
// If a heartbeat finds that another server has taken the claim over (this
// one missed its heartbeats for longer than the TTL), the Claim's Lost
// channel is closed: the server must stop, as its sessions are the other
// one's now. A heartbeat that fails otherwise (the database is down) is
// logged and tried again at the next one: a single server cut off from its
// database for a while goes on, and stops only if another took over.
//
// While the claim is held, the store's session writes are fenced on it:
// an update lands only while the owner row is still this claim's, so
// that a late write of a server taken over (queued while the database was
// out of its reach, before its next heartbeat finds the claim lost) cannot
// change the rows of the server that took over; and once the claim is
// known lost, SaveSession and UpdateSession are refused (ErrClaimLost).
func (s *DB) Claim(ctx context.Context, o Owner) (*Claim, error) {
	o, err := s.completeOwner(o)
	if err != nil {
		return nil, err
	}
	var prev *ownerModel
	for attempt := 1; ; attempt++ {
		prev, err = s.tryClaim(ctx, o)
		if !errors.Is(err, errClaimRace) || attempt == claimAttempts {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if prev != nil {
		s.log.Warn("took the database over from a server that is gone",
			"host", prev.Hostname, "pid", prev.PID, "data_dir", prev.DataDir,
			"last_seen", s.stamp().Sub(prev.HeartbeatAt).Round(time.Millisecond))
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Claim{
		s:      s,
		owner:  o,
		lost:   make(chan struct{}),
		done:   make(chan struct{}),
		ctx:    rctx,
		cancel: cancel,
	}
	s.claim.Store(c)
	go c.renew()
	return c, nil
}

// completeOwner fills in o's zero fields.
func (s *DB) completeOwner(o Owner) (Owner, error) {
	if o.NodeID == "" {
		o.NodeID = rand.Text()
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("store: claim: hostname: %w", err)
		}
		o.Hostname = h
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Instance == "" {
		o.Instance = localInstance()
	}
	if o.StartedAt.IsZero() {
		o.StartedAt = s.stamp()
	}
	o.StartedAt = normTime(o.StartedAt)
	return o, nil
}

// tryClaim makes o the owner in one transaction, and returns the owner it
// took over from, if any. An owner row changed by another server meanwhile
// is errClaimRace.
func (s *DB) tryClaim(ctx context.Context, o Owner) (prev *ownerModel, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.postgres() {
			// A cluster's nodes may share a PostgreSQL database, and a
			// single server would take their sessions up (nodes.go).
			if err := lockNodesAndClaim(tx); err != nil {
				return err
			}
			if err := refuseNodes(tx); err != nil {
				return err
			}
		}
		now := s.stamp()
		mine := ownerModel{
			Slot: ownerSlot, NodeID: o.NodeID, Hostname: o.Hostname, PID: o.PID, Instance: o.Instance,
			DataDir: o.DataDir, StartedAt: o.StartedAt, HeartbeatAt: now,
		}
		var cur ownerModel
		err := tx.Where("slot = ?", ownerSlot).Take(&cur).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			// ON CONFLICT DO NOTHING: a server that inserted first wins,
			// on every driver, and this one reads its row next time.
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&mine)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errClaimRace
			}
			return nil
		}
		if err != nil {
			return err
		}
		if cur.NodeID != o.NodeID {
			if !s.gone(cur, o, now) {
				return s.ownedError(cur, now)
			}
			prev = &cur
		}
		// beats changes with every heartbeat: the row is replaced only if
		// nobody wrote it since it was read.
		res := tx.Model(&ownerModel{}).
			Where("slot = ? AND node_id = ? AND beats = ?", ownerSlot, cur.NodeID, cur.Beats).
			Updates(map[string]any{
				"node_id": mine.NodeID, "hostname": mine.Hostname, "pid": mine.PID, "instance": mine.Instance,
				"data_dir": mine.DataDir, "started_at": mine.StartedAt,
				"heartbeat_at": mine.HeartbeatAt, "beats": cur.Beats + 1,
			})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errClaimRace
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrOwned) && !errors.Is(err, errClaimRace) {
		return nil, fmt.Errorf("store: claim the database: %w", err)
	}
	return prev, err
}

// gone reports whether cur, the owner row of another server, may be taken
// over by o at now: its lease expired, or it ran on o's machine, in o's
// boot and pid namespace (a container sharing the host's name has pids of
// its own), and its process is gone.
func (s *DB) gone(cur ownerModel, o Owner, now time.Time) bool {
	if now.Sub(cur.HeartbeatAt) > s.lease.ttl {
		return true
	}
	return goneHere(cur.Hostname, cur.Instance, cur.PID, o.Hostname, o.Instance)
}

// goneHere reports whether the process pid recorded on host, in instance
// (the boot and pid namespace it ran in: localInstance), ran on this
// machine, host myHost in myInstance, and no longer exists. A pid names
// the same process only within one instance, and an unknown instance
// ("") names none. The single server's claim (gone) and a node's
// registration (goneHolder) both take a live lease over on it.
func goneHere(host, instance string, pid int, myHost, myInstance string) bool {
	local := host == myHost && instance != "" && instance == myInstance
	return local && pid > 0 && !processAlive(pid)
}

// ownedError returns the error of a claim refused because of cur.
func (s *DB) ownedError(cur ownerModel, now time.Time) error {
	return fmt.Errorf("%w: the ptyhost server on %s (pid %d, data dir %q) owns it, last seen %v ago; "+
		"two servers on one database would both take the sessions up: stop the other server, "+
		"or wait for its lease to expire (%v without a heartbeat)",
		ErrOwned, cur.Hostname, cur.PID, cur.DataDir, now.Sub(cur.HeartbeatAt).Round(time.Millisecond), s.lease.ttl)
}

// Claim is this server's ownership of the database, from DB.Claim. Its
// methods are safe for concurrent use.
type Claim struct {
	s     *DB
	owner Owner

	lost     chan struct{} // closed when another server took the claim over
	done     chan struct{} // closed when renew returned
	ctx      context.Context
	cancel   context.CancelFunc // stops renew
	lostOnce sync.Once
	isLost   atomic.Bool // set before lost is closed
}

// Owner returns the owner the claim was made for, its zero fields filled
// in.
func (c *Claim) Owner() Owner { return c.owner }

// Lost returns a channel closed when another server has taken the claim
// over: this server no longer owns the database and must stop.
func (c *Claim) Lost() <-chan struct{} { return c.lost }

// Release stops the heartbeat and deletes the owner row if it is still
// this claim's, so that the next server claims the database at once. It
// is safe to call more than once.
func (c *Claim) Release(ctx context.Context) error {
	c.cancel()
	<-c.done
	err := c.s.renewalDB().WithContext(ctx).
		Where("slot = ? AND node_id = ?", ownerSlot, c.owner.NodeID).
		Delete(&ownerModel{}).Error
	if err != nil {
		return fmt.Errorf("store: release the database: %w", err)
	}
	return nil
}

// renew writes the heartbeat every LeaseRenewal until Release, or until it
// finds the claim lost.
func (c *Claim) renew() {
	defer close(c.done)
	log := c.s.log.With("component", "store")
	t := time.NewTicker(c.s.lease.renewal)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.s.lease.ttl)
		err := c.s.heartbeat(ctx, c.owner.NodeID)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, errLost):
			log.Error("another server took the database over; this one must stop", "err", err)
			c.lose()
			return
		case c.ctx.Err() != nil:
			return
		default:
			log.Warn("renewing the claim on the database failed; will retry", "err", err, "lease_ttl", c.s.lease.ttl)
		}
	}
}

// lose marks the claim lost, so that the store's session writes are
// refused, and closes Lost.
func (c *Claim) lose() {
	c.isLost.Store(true)
	c.lostOnce.Do(func() { close(c.lost) })
}

// fenceSessions returns q, an update of session rows, restricted to while
// this server holds the claim it made (if any): an error wrapping
// ErrClaimLost once it knows the claim lost, and otherwise q conditioned
// on the owner row being still the claim's, so that of this write and
// another server's take-over the database orders one first. After
// Release the owner row is not the claim's either: the server owns
// nothing.
func (s *DB) fenceSessions(q *gorm.DB) (*gorm.DB, error) {
	if err := s.claimLost(); err != nil {
		return nil, err
	}
	c := s.claim.Load()
	if c == nil {
		return q, nil
	}
	return q.Where("EXISTS (SELECT 1 FROM server_owner WHERE slot = ? AND node_id = ?)", ownerSlot, c.owner.NodeID), nil
}

// claimLost returns an error wrapping ErrClaimLost once this server knows
// the claim it made lost; nil while it holds it, or made none.
func (s *DB) claimLost() error {
	if c := s.claim.Load(); c != nil && c.isLost.Load() {
		return fmt.Errorf("%w: this server must stop", ErrClaimLost)
	}
	return nil
}

// errLost says the owner row is no longer this claim's.
var errLost = errors.New("the database claim was lost")

// heartbeat stamps the owner row of nodeID with the time, or returns an
// error wrapping errLost if the row is another's, or gone, through the
// renewal pool (pool.go), which requests hung on a lock cannot exhaust.
func (s *DB) heartbeat(ctx context.Context, nodeID string) error {
	res := s.renewalDB().WithContext(ctx).Model(&ownerModel{}).
		Where("slot = ? AND node_id = ?", ownerSlot, nodeID).
		Updates(map[string]any{"heartbeat_at": s.stamp(), "beats": gorm.Expr("beats + 1")})
	if res.Error != nil {
		return fmt.Errorf("store: heartbeat: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var cur ownerModel
	err := s.renewalDB().WithContext(ctx).Where("slot = ?", ownerSlot).Take(&cur).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: the owner row was deleted", errLost)
	case err != nil:
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	return fmt.Errorf("%w: the server on %s (pid %d, data dir %q) owns the database since %s",
		errLost, cur.Hostname, cur.PID, cur.DataDir, cur.StartedAt.Format(time.RFC3339))
}
