package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// TestPickNode: of the healthy nodes that serve the environment, the one
// with the fewest running sessions; a tie goes to this node, then to the
// first name; a node with another cluster secret never; none is an error
// that says why.
func TestPickNode(t *testing.T) {
	nodes := []Node{
		{Name: "a", Healthy: true, Sessions: 3},
		{Name: "b", Healthy: true, Sessions: 1},
		{Name: "c", Healthy: false, Sessions: 0},
		{Name: "d", Healthy: true, Sessions: 1},
		{Name: "e", Healthy: true, Sessions: 2},
	}
	docker := func(served ...string) Environment { return Environment{ID: "dk", Type: "DOCKER", Nodes: served} }
	// secrets are a, b and c, healthy, with 2, 0 and 1 sessions, and the
	// cluster secrets given, as a lists them.
	secrets := func(a, b, c string) []Node {
		return []Node{
			{Name: "a", Healthy: true, Sessions: 2, ClusterSecret: a},
			{Name: "b", Healthy: true, Sessions: 0, ClusterSecret: b},
			{Name: "c", Healthy: true, Sessions: 1, ClusterSecret: c},
		}
	}
	tests := []struct {
		name  string
		env   Environment
		self  string
		nodes []Node
		want  string // a node's name, or the error's text
	}{
		{"least sessions, unhealthy c skipped", docker(), "a", nodes, "b"},
		{"tie: self first", docker(), "d", nodes, "d"},
		{"tie: then by name", docker(), "a", nodes, "b"},
		{"restricted to a and e", docker("a", "e"), "a", nodes, "e"},
		{"restricted to one busy node", docker("a"), "b", nodes, "a"},
		{"restricted to an unhealthy node", docker("c"), "a", nodes,
			`no healthy node serves it: environment "dk" is served by node c (unhealthy: its lease expired)`},
		{"restricted to unknown nodes", docker("c", "zz"), "a", nodes,
			`environment "dk" is served by node c (unhealthy: its lease expired), zz (not registered)`},
		{"HOST pinned to its node, though busiest", Environment{ID: "h", Type: "HOST", Node: "a"}, "b", nodes, "a"},
		{"HOST pinned to an unhealthy node", Environment{ID: "h", Type: "HOST", Node: "c"}, "a", nodes,
			`environment "h" is served by node c (unhealthy`},
		{"HOST of a single server's: any node", Environment{ID: "host", Type: "HOST"}, "e", nodes, "b"},
		{"no healthy node at all", docker(), "a", []Node{{Name: "a"}, {Name: "b"}}, `may run on any node, and none is healthy`},
		// A node whose cluster secret differs from this node's would
		// refuse the forwarded create: passed over, though idlest. One
		// whose secret is unknown (a node of an older ptyhost) is not.
		{"another secret passed over", docker(), "a", secrets(SecretSame, SecretDiffers, SecretSame), "c"},
		{"an unknown secret is no mismatch", docker(), "a", secrets(SecretSame, SecretUnknown, SecretSame), "b"},
		{"no secret recorded at all", docker(), "a", secrets("", "", ""), "b"},
		{"restricted to a node with another secret", docker("b"), "a", secrets(SecretSame, SecretDiffers, SecretSame),
			`environment "dk" is served by node b (its cluster secret differs from this node's)`},
		{"HOST pinned to a node with another secret", Environment{ID: "h", Type: "HOST", Node: "b"}, "a", secrets(SecretSame, SecretDiffers, SecretSame),
			`no healthy node serves it: environment "h" is served by node b (its cluster secret differs`},
		{"every other node with another secret, this one unhealthy", docker(), "a",
			[]Node{{Name: "a", ClusterSecret: SecretSame}, {Name: "b", Healthy: true, ClusterSecret: SecretDiffers}},
			`may run on any node, and the healthy ones, b, have a cluster secret other than this node's`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := pickNode(tc.env, tc.nodes, tc.self)
			switch {
			case err != nil && !strings.Contains(err.Error(), tc.want):
				t.Errorf("pickNode: %v, want %s", err, tc.want)
			case err != nil && (!errors.Is(err, ErrNoServingNode) || !errors.Is(err, shared.ErrUnavailable)):
				t.Errorf("pickNode: %v, want it to wrap ErrNoServingNode and shared.ErrUnavailable", err)
			case err == nil && n.Name != tc.want:
				t.Errorf("pickNode: %s, want %s", n.Name, tc.want)
			}
		})
	}
}

// TestPlacementFields: node names only; node on HOST, nodes on the other
// types; no name twice.
func TestPlacementFields(t *testing.T) {
	tests := []struct {
		name string
		env  Environment
		want string // "" for valid
	}{
		{"HOST with a node", Environment{Type: "HOST", Node: "node-1"}, ""},
		{"DOCKER on some nodes", Environment{Type: "DOCKER", Nodes: []string{"a", "b"}}, ""},
		{"neither", Environment{Type: "SSH"}, ""},
		{"a bad node name", Environment{Type: "HOST", Node: "Node_A"}, `node "Node_A": want a node name`},
		{"a long node name", Environment{Type: "HOST", Node: strings.Repeat("a", 64)}, "want a node name"},
		{"node on DOCKER", Environment{Type: "DOCKER", Node: "a"}, "only a HOST environment names its node"},
		{"nodes on HOST", Environment{Type: "HOST", Nodes: []string{"a"}}, "set node instead"},
		{"a bad name in nodes", Environment{Type: "SSH", Nodes: []string{"a", "b c"}}, `nodes[1] "b c"`},
		{"an empty name in nodes", Environment{Type: "SSH", Nodes: []string{""}}, `nodes[0] ""`},
		{"a name twice", Environment{Type: "SSH", Nodes: []string{"a", "b", "a"}}, `"a" is listed twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPlacementFields(&tc.env)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%+v: %v, want it valid", tc.env, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidArgument)):
				t.Errorf("%+v: %v, want ErrInvalidArgument saying %s", tc.env, err, tc.want)
			}
		})
	}
}

// fixedNodes is a NodeLister of a fixed list.
type fixedNodes []Node

func (n fixedNodes) ListNodes(context.Context) ([]Node, error) { return append([]Node(nil), n...), nil }

// TestClusterEnvironmentsAndCreate: on a node of a cluster, a HOST
// environment created without a node gets this one; a session of an
// environment this node does not serve is refused (even by a request that
// skipped placement), and so is the id of a session another node runs.
// PlaceSession picks the node; a single server places everything on
// itself and stores the fields as given.
func TestClusterEnvironmentsAndCreate(t *testing.T) {
	ctx := t.Context()
	cluster := func(o *Options) {
		o.NodeName = "a"
		o.Nodes = fixedNodes{{Name: "a", Healthy: true, Sessions: 5}, {Name: "b", Healthy: true, Sessions: 0}}
		o.Plugins = fakePlugins{"FAKE": o.Plugins.(fakePlugins)["FAKE"], "HOST": o.Plugins.(fakePlugins)["FAKE"]}
	}
	h := newHarness(t, cluster)
	env, err := h.m.CreateEnvironment(ctx, Environment{ID: "mine", Type: "HOST"})
	if err != nil || env.Node != "a" {
		t.Fatalf("create a HOST environment on node a: %+v, %v; want node a", env, err)
	}
	if _, err := h.m.CreateEnvironment(ctx, Environment{ID: "theirs", Type: "HOST", Node: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.CreateEnvironment(ctx, Environment{ID: "b-only", Type: "FAKE", Nodes: []string{"b"}}); err != nil {
		t.Fatal(err)
	}

	for env, want := range map[string]string{"mine": "a", "theirs": "b", "b-only": "b", "fake": "b"} {
		n, local, err := h.m.PlaceSession(ctx, env)
		if err != nil || n.Name != want || local != (want == "a") {
			t.Errorf("PlaceSession(%s): %s local=%v %v; want %s", env, n.Name, local, err, want)
		}
	}
	if _, _, err := h.m.PlaceSession(ctx, "nope"); !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("PlaceSession of an unknown environment: %v, want ErrEnvironmentNotFound", err)
	}

	for _, env := range []string{"theirs", "b-only"} {
		_, err := h.m.CreateSession(ctx, CreateOptions{ID: "s-" + env, EnvironmentID: env})
		if !errors.Is(err, ErrNotServed) || !strings.Contains(err.Error(), "runs on node b, not on a") {
			t.Errorf("create a session of %s on node a: %v, want ErrNotServed", env, err)
		}
	}
	if _, err := h.m.CreateSession(ctx, CreateOptions{ID: "here", EnvironmentID: "mine"}); err != nil {
		t.Errorf("create a session of node a's HOST environment on a: %v", err)
	}
	// A session b runs, as b recorded it: its id is taken cluster-wide.
	if err := h.store.SaveSession(ctx, SessionRecord{ID: "on-b", EnvironmentID: "fake", Node: "b", Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.CreateSession(ctx, CreateOptions{ID: "on-b", EnvironmentID: "fake"}); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("create the id of a session b runs: %v, want ErrAlreadyExists", err)
	}
	if r := h.store.row(t, "on-b"); r.Node != "b" || r.Status != StatusActive {
		t.Errorf("b's session's record after the refused create: %+v", r)
	}

	single := newHarness(t, func(o *Options) {
		o.Plugins = fakePlugins{"FAKE": o.Plugins.(fakePlugins)["FAKE"], "HOST": o.Plugins.(fakePlugins)["FAKE"]}
	})
	env, err = single.m.CreateEnvironment(ctx, Environment{ID: "h", Type: "HOST"})
	if err != nil || env.Node != "" {
		t.Errorf("a single server's HOST environment: %+v, %v; want no node", env, err)
	}
	if _, err := single.m.CreateEnvironment(ctx, Environment{ID: "pinned", Type: "HOST", Node: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	if n, local, err := single.m.PlaceSession(ctx, "pinned"); !local || err != nil {
		t.Errorf("a single server places on %+v local=%v %v, want itself", n, local, err)
	}
	if _, err := single.m.CreateSession(ctx, CreateOptions{ID: "s", EnvironmentID: "pinned"}); err != nil {
		t.Errorf("a single server creates in an environment naming another node: %v, want it to serve it", err)
	}
}
