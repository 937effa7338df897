package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Removing a node. The registry keeps every node that ever registered, so
// that one which stopped or was lost lists as unhealthy rather than
// vanishing; one an operator has decommissioned would list so forever.
// RemoveNode takes it out. Whether it may is the store's to decide, in one
// conditional write (NodeRemover), since only the store sees the lease and
// the sessions at one instant: the manager asks it, and says why not.

var (
	// ErrNodeNotFound: no node of the name is registered. The API
	// answers 404.
	ErrNodeNotFound = errors.New("node not found")
	// ErrNodeInUse: the node may not be removed: its lease is live, or
	// the store records sessions of it that run or may run again. It is
	// wrapped by *NodeInUseError, which says which. The API answers 409.
	ErrNodeInUse = errors.New("the node cannot be removed")
)

// NodeRemover is implemented by a store that keeps the nodes of a cluster
// (core/gormstore's DB). RemoveNode uses it.
type NodeRemover interface {
	// RemoveNode deletes node name from the registry, in one conditional
	// write, only if its lease has expired by the store's clock and the
	// store records no session of it that runs (STARTING, ACTIVE, IDLE)
	// or is ERROR with a node_lost reason (IsNodeLost), one the node
	// takes up again if it comes back. It returns an error wrapping
	// ErrNodeNotFound when no node has the name, and a *NodeInUseError
	// when the node may not be removed.
	RemoveNode(ctx context.Context, name string) error
}

// NodeInUseError says why node Name may not be removed. It wraps
// ErrNodeInUse.
type NodeInUseError struct {
	Name string
	// LeaseLive: the node's lease has not expired by the store's clock;
	// LeaseLeft is how long it runs unless renewed.
	LeaseLive bool
	LeaseLeft time.Duration
	// Released: the node stopped (core/gormstore's NodeLease.Release).
	// A stop that leaves sessions running leaves the lease to run out,
	// so that the node restarted within it takes them up as they were.
	Released bool
	// Running and NodeLost count the node's sessions the store records
	// as running (STARTING, ACTIVE, IDLE) and as ERROR node_lost;
	// RunningIDs and NodeLostIDs are the first of them, by creation.
	Running, NodeLost       int
	RunningIDs, NodeLostIDs []string
}

func (e *NodeInUseError) Error() string {
	var why []string
	switch {
	case e.LeaseLive && e.Released:
		why = append(why, fmt.Sprintf("it stopped leaving its sessions running, and its lease runs %v more, "+
			"so that the node restarted within it takes them up; then they are recorded node_lost", e.LeaseLeft))
	case e.LeaseLive:
		why = append(why, fmt.Sprintf("its lease is live (it expires in %v unless renewed): it runs, or stopped or died less than a lease ago; "+
			"stop the node first, and remove it once its lease has expired", e.LeaseLeft))
	}
	if e.Running > 0 {
		why = append(why, fmt.Sprintf("%s still recorded as running (%s)%s",
			sessionsOf(e.Running), idList(e.RunningIDs, e.Running), runningNext(e.LeaseLive)))
	}
	if e.NodeLost > 0 {
		why = append(why, fmt.Sprintf("%s recorded node_lost (%s), which the node takes up again if it comes back; "+
			"end them for good by destroying each (ptyhost kill ID), then remove the node",
			sessionsOf(e.NodeLost), idList(e.NodeLostIDs, e.NodeLost)))
	}
	if len(why) == 0 {
		// The store found the node in use, then nothing that kept it:
		// it changed in between.
		why = append(why, "it changed while it was being removed; try again")
	}
	return fmt.Sprintf("node %s cannot be removed: %s", e.Name, strings.Join(why, "; "))
}

func (e *NodeInUseError) Unwrap() error { return ErrNodeInUse }

// sessionsOf is "1 session" or "n sessions".
func sessionsOf(n int) string {
	if n == 1 {
		return "1 session"
	}
	return fmt.Sprintf("%d sessions", n)
}

// idList lists ids, of n in all, saying how many more there are.
func idList(ids []string, n int) string {
	s := strings.Join(ids, ", ")
	if more := n - len(ids); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// runningNext is what to do about the running sessions of a node whose
// lease is live or not.
func runningNext(leaseLive bool) string {
	if leaseLive {
		return ""
	}
	// The node answering is live, and records a lost node's running
	// sessions node_lost after its next renewal.
	return ", though its lease has expired: a live node records them node_lost within seconds; " +
		"then end them for good by destroying each (ptyhost kill ID), and remove the node"
}

// RemoveNode removes node name from the cluster's registry, so that it is
// no longer listed (ListNodes), once it is gone for good: its lease has
// expired by the store's clock, and the store records no session of it
// that runs or is recorded node_lost (NodeRemover). Its ended sessions'
// records stay. A node removed that starts again registers again.
//
// It returns an error wrapping ErrNodeNotFound for a name no node has; a
// *NodeInUseError, wrapping ErrNodeInUse, saying why the node may not be
// removed (a node asked to remove itself is one whose lease is live); one
// wrapping ErrInvalidArgument on a single server (no Options.Nodes), which
// has no registry; ErrNotSupported when Options.Nodes cannot remove; and
// one wrapping ErrStoreUnavailable when the store fails or does not answer
// within storeTimeout.
func (m *Manager) RemoveNode(ctx context.Context, name string) error {
	if m.opts.Nodes == nil {
		return fmt.Errorf("%w: this server is not a node of a cluster: it keeps no registry of nodes to remove %q from", ErrInvalidArgument, name)
	}
	if name == "" {
		return fmt.Errorf("%w: a node name is required", ErrInvalidArgument)
	}
	r, ok := m.opts.Nodes.(NodeRemover)
	if !ok {
		return fmt.Errorf("removing node %q: %w", name, ErrNotSupported)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := r.RemoveNode(sctx, name)
	switch {
	case err == nil:
	case errors.Is(err, ErrNodeNotFound):
		return fmt.Errorf("%w: %q", ErrNodeNotFound, name)
	case errors.Is(err, ErrNodeInUse):
		return err
	default:
		return storeFailed(fmt.Errorf("removing node %q: %w", name, err))
	}
	m.log.Info("node removed from the cluster's registry", "node", name)
	return nil
}
