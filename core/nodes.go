package core

import (
	"cmp"
	"context"
	"slices"
)

// Nodes. Several servers may share one database as the nodes of a cluster
// (docs/design.md, "Nodes"): each runs and owns the sessions it created,
// recorded with its name (Options.NodeName). The registry of nodes, with
// their leases, is the store's business (core/gormstore's RegisterNode);
// the manager only lists it, or itself when it serves alone, and asks it to
// remove a node gone for good (noderemove.go).

// DefaultNodeName is the name a single server lists itself under.
const DefaultNodeName = "local"

// Node is a server of a cluster, as GET /api/v1/nodes lists it.
type Node struct {
	Name string `json:"name"`
	// URL is where the other nodes and clients reach it: its advertised
	// URL, or, for a single server, the address it listens on.
	URL string `json:"url"`
	// Healthy: its lease has not expired, by the database's clock.
	Healthy bool `json:"healthy"`
	// Sessions counts its running sessions (STARTING, ACTIVE, IDLE), as
	// the store records them.
	Sessions int    `json:"sessions"`
	Version  string `json:"version"`
	// ClusterSecret says whether the node's cluster secret is the one of
	// the node that lists it: SecretSame, SecretDiffers, or SecretUnknown
	// when either has none recorded (a node of a ptyhost from before the
	// registry held them). Empty on a single server. The registry holds
	// a fingerprint of each node's secret (core/gormstore's
	// RegisterNode), never the secret. A node whose secret differs
	// refuses what this one forwards: placement passes it over, and a
	// request for its sessions is refused here (502) rather than sent.
	ClusterSecret string `json:"cluster_secret,omitempty"`
}

// The values of Node.ClusterSecret.
const (
	SecretSame    = "same"
	SecretDiffers = "differs"
	SecretUnknown = "unknown"
)

// NodeLister lists the nodes of a cluster, sorted by name
// (core/gormstore's DB does, on PostgreSQL).
type NodeLister interface {
	ListNodes(ctx context.Context) ([]Node, error)
}

// ListNodes returns the cluster's nodes sorted by name, or, on a single
// server (no Options.Nodes), the one entry of this server: Options.Self,
// healthy, with the sessions it runs.
func (m *Manager) ListNodes(ctx context.Context) ([]Node, error) {
	if m.opts.Nodes != nil {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		nodes, err := m.opts.Nodes.ListNodes(sctx)
		if err != nil {
			return nil, storeFailed(err)
		}
		slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
		return nodes, nil
	}
	self := m.opts.Self
	if self.Name == "" {
		self.Name = DefaultNodeName
	}
	self.Healthy = true
	self.Sessions = m.runningSessions()
	return []Node{self}, nil
}

// runningSessions counts the sessions in the manager's map that have not
// exited: those a store would hold as STARTING, ACTIVE or IDLE.
func (m *Manager) runningSessions() int {
	m.mu.Lock()
	live := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		live = append(live, s)
	}
	m.mu.Unlock()
	n := 0
	for _, s := range live {
		if !s.hasExited() {
			n++
		}
	}
	return n
}
