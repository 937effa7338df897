package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ptyhost/ptyhost/shared"
)

// Placement. In a cluster (Options.NodeName set) each environment is
// served by some of the nodes (docs/design.md, "Nodes"):
//
//   - a HOST environment by the one node its Node field names, the
//     machine it stands for; CreateEnvironment fills it in with the node
//     that creates it. A HOST environment without a node (created by a
//     single server before the database became a cluster's) is served by
//     every node, each on its own machine, as it was before;
//   - any other type (DOCKER, SSH, a third party's) by the nodes its Nodes
//     list names, or by every node when the list is empty.
//
// PlaceSession picks, among the healthy nodes that serve an environment,
// the one with the fewest running sessions; the API creates the session
// there, here or through the node that runs it. On a single server the
// fields are checked and stored but place nothing: the server serves every
// environment.

// ErrNoServingNode is wrapped by PlaceSession's error when no healthy node
// serves the environment. It wraps shared.ErrUnavailable (the API answers
// 503): the environment cannot be used now, and may be once its node is
// back.
var ErrNoServingNode = fmt.Errorf("%w: no healthy node serves it", shared.ErrUnavailable)

// nodeNamePattern is what a node name may be: a DNS label's characters in
// lower case, as `serve --node-name` takes them.
var nodeNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// NodeName returns the name of this server in its cluster, or "" for a
// single server (Options.NodeName).
func (m *Manager) NodeName() string { return m.opts.NodeName }

// checkPlacementFields validates env's Node and Nodes: node names, a Node
// only on HOST, Nodes only on the other types, and no name twice.
func checkPlacementFields(env *Environment) error {
	if env.Node != "" {
		if env.Type != hostType {
			return fmt.Errorf("%w: node %q: only a HOST environment names its node; restrict a %s environment to some nodes with nodes", ErrInvalidArgument, env.Node, env.Type)
		}
		if !nodeNamePattern.MatchString(env.Node) {
			return fmt.Errorf("%w: node %q: want a node name, 1 to 63 of a-z, 0-9 and -", ErrInvalidArgument, env.Node)
		}
	}
	if len(env.Nodes) == 0 {
		env.Nodes = nil
		return nil
	}
	if env.Type == hostType {
		return fmt.Errorf("%w: nodes: a HOST environment is served by the one node whose machine it is: set node instead", ErrInvalidArgument)
	}
	for i, n := range env.Nodes {
		if !nodeNamePattern.MatchString(n) {
			return fmt.Errorf("%w: nodes[%d] %q: want a node name, 1 to 63 of a-z, 0-9 and -", ErrInvalidArgument, i, n)
		}
		if slices.Contains(env.Nodes[:i], n) {
			return fmt.Errorf("%w: nodes: %q is listed twice", ErrInvalidArgument, n)
		}
	}
	return nil
}

// defaultNode gives a HOST environment without a node, in a cluster, the
// node of this server: the machine it stands for is the one it was
// created on.
func (m *Manager) defaultNode(env *Environment) {
	if env.Type == hostType && env.Node == "" {
		env.Node = m.opts.NodeName
	}
}

// servingNodes returns the names of the nodes that serve env; nil means
// every node.
func servingNodes(env Environment) []string {
	if env.Type == hostType {
		if env.Node == "" {
			return nil
		}
		return []string{env.Node}
	}
	return env.Nodes
}

// serves reports whether node name serves env.
func serves(env Environment, name string) bool {
	names := servingNodes(env)
	return names == nil || slices.Contains(names, name)
}

// pickNode returns the node a new session of env runs on: of the healthy
// nodes that serve it, the one with the fewest running sessions; on a tie
// self (no hop through another node), then the first by name. A node
// whose cluster secret differs from this node's (Node.ClusterSecret) is
// passed over: it would refuse the forwarded create. One whose secret is
// unknown (a node from before the registry recorded them) is not: it may
// well share the secret, as every node did before. The counts are the
// registry's, read a moment ago: two creates at once may pick the same
// node, and that is fine, the next ones even it out. With no healthy
// node serving env, the error wraps ErrNoServingNode and says why.
func pickNode(env Environment, nodes []Node, self string) (Node, error) {
	names := servingNodes(env)
	var cands []Node
	for _, n := range nodes {
		if n.Healthy && n.ClusterSecret != SecretDiffers && (names == nil || slices.Contains(names, n.Name)) {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return Node{}, fmt.Errorf("%w: environment %q %s", ErrNoServingNode, env.ID, whyNoNode(names, nodes))
	}
	best := slices.MinFunc(cands, func(a, b Node) int {
		if c := cmp.Compare(a.Sessions, b.Sessions); c != 0 {
			return c
		}
		if (a.Name == self) != (b.Name == self) {
			if a.Name == self {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return best, nil
}

// whyNoNode says why none of nodes serves an environment served by names
// (nil: by every node).
func whyNoNode(names []string, nodes []Node) string {
	if names == nil {
		var differ []string
		for _, n := range nodes {
			if n.Healthy && n.ClusterSecret == SecretDiffers {
				differ = append(differ, n.Name)
			}
		}
		if len(differ) > 0 {
			return "may run on any node, and the healthy ones, " + strings.Join(differ, ", ") + ", have a cluster secret other than this node's"
		}
		return "may run on any node, and none is healthy"
	}
	var parts []string
	for _, name := range names {
		i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == name })
		switch {
		case i < 0:
			parts = append(parts, name+" (not registered)")
		case nodes[i].Healthy && nodes[i].ClusterSecret == SecretDiffers:
			parts = append(parts, name+" (its cluster secret differs from this node's)")
		default:
			parts = append(parts, name+" (unhealthy: its lease expired)")
		}
	}
	return "is served by node " + strings.Join(parts, ", ")
}

// PlaceSession returns the node on which a new session of environment
// envID runs, and whether it is this one. A single server places every
// session on itself without asking anything. A node of a cluster reads the
// environment and the registry and picks (pickNode): an unknown
// environment is ErrEnvironmentNotFound, a registry that cannot be read
// ErrStoreUnavailable, and no healthy serving node an error wrapping
// ErrNoServingNode.
func (m *Manager) PlaceSession(ctx context.Context, envID string) (node Node, local bool, err error) {
	if m.opts.Nodes == nil {
		return Node{Name: m.opts.NodeName}, true, nil
	}
	if envID == "" {
		return Node{}, false, fmt.Errorf("%w: environment_id is required", ErrInvalidArgument)
	}
	env, err := m.lookupEnvironment(ctx, envID)
	if err != nil {
		return Node{}, false, err
	}
	nodes, err := m.ListNodes(ctx)
	if err != nil {
		return Node{}, false, err
	}
	n, err := pickNode(env, nodes, m.opts.NodeName)
	if err != nil {
		return Node{}, false, err
	}
	return n, n.Name == m.opts.NodeName, nil
}

// ErrNotServed is wrapped by CreateSession's error, on a node of a
// cluster, for an environment this node does not serve (a HOST
// environment of another node's machine, or one whose nodes leave this
// one out), so that no session runs on the wrong machine even when a
// request skips placement. It wraps ErrInvalidArgument: the API answers
// 400.
var ErrNotServed = fmt.Errorf("%w: this node does not serve the environment", ErrInvalidArgument)

// checkClusterCreate is CreateSession's check on a node of a cluster: the
// node serves env, and no other node's record holds id live. Session ids
// are the cluster's, and the store keeps one row per id: a create here
// must not replace a session another node runs. (Two nodes creating one
// id at the same instant may both pass here; the store's insert then lets
// one win, and the other's create fails with ErrAlreadyExists.)
func (m *Manager) checkClusterCreate(ctx context.Context, env Environment, id string) error {
	if m.opts.NodeName == "" {
		return nil
	}
	if !serves(env, m.opts.NodeName) {
		return fmt.Errorf("%w: environment %q runs on node %s, not on %s; create the session through any node's API, which places it",
			ErrNotServed, env.ID, strings.Join(servingNodes(env), ", "), m.opts.NodeName)
	}
	node, err := m.liveElsewhere(ctx, id)
	if err != nil {
		return err
	}
	if node != "" {
		return fmt.Errorf("%w: session %q runs on node %s", ErrAlreadyExists, id, node)
	}
	return nil
}

// liveElsewhere returns the node, another than this one, that session
// id's record says runs it; "" when the record is not live there, or
// there is none.
func (m *Manager) liveElsewhere(ctx context.Context, id string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, err := m.store.GetSession(sctx, id)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		return "", nil
	case err != nil:
		return "", storeFailed(err)
	case rec.Node != m.opts.NodeName && isLive(rec.Status):
		return rec.Node, nil
	}
	return "", nil
}

// isLive reports whether a session recorded as st runs.
func isLive(st Status) bool {
	return st == StatusStarting || st == StatusActive || st == StatusIdle
}
