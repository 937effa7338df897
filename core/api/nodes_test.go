package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// nodeLister is a core.NodeLister with a func field.
type nodeLister struct {
	list func(ctx context.Context) ([]core.Node, error)
}

func (l nodeLister) ListNodes(ctx context.Context) ([]core.Node, error) { return l.list(ctx) }

// TestListNodes: a single server lists itself, as Options.Self with its
// running sessions, and no cluster secret; a node of a cluster lists what
// the registry says, sorted by name, whether each node's cluster secret is
// its own included; a registry that fails is a 503.
func TestListNodes(t *testing.T) {
	t.Run("single server", func(t *testing.T) {
		api := newAPI(t, Options{}, func(o *core.Options) {
			o.Self = core.Node{URL: "http://127.0.0.1:7420", Version: "v1.2.3"}
		})
		api.create(t, "one")
		api.create(t, "two")
		code, body := api.do(t, "GET", "/api/v1/nodes", "")
		want := `[map[healthy:true name:local sessions:2 url:http://127.0.0.1:7420 version:v1.2.3]]`
		if got := fmt.Sprint(body["nodes"]); code != 200 || got != want {
			t.Errorf("GET /api/v1/nodes: %d %s, want 200 %s", code, got, want)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		api := newAPI(t, Options{}, func(o *core.Options) {
			o.NodeName = "b"
			o.Nodes = nodeLister{list: func(context.Context) ([]core.Node, error) {
				return []core.Node{
					{Name: "b", URL: "http://b:7420", Healthy: true, Sessions: 1, Version: "v2", ClusterSecret: core.SecretSame},
					{Name: "a", URL: "http://a:7420", Sessions: 3, Version: "v1", ClusterSecret: core.SecretDiffers},
				}, nil
			}}
		})
		rec, _ := api.create(t, "mine")
		if rec.Node != "b" {
			t.Errorf("the session's node is %q, want b, the node that created it", rec.Node)
		}
		code, body := api.do(t, "GET", "/api/v1/nodes", "")
		want := `[map[cluster_secret:differs healthy:false name:a sessions:3 url:http://a:7420 version:v1] map[cluster_secret:same healthy:true name:b sessions:1 url:http://b:7420 version:v2]]`
		if got := fmt.Sprint(body["nodes"]); code != 200 || got != want {
			t.Errorf("GET /api/v1/nodes: %d %s, want 200 %s", code, got, want)
		}
		code, body = api.do(t, "GET", "/api/v1/sessions/mine", "")
		if code != 200 || body["node"] != "b" {
			t.Errorf("GET the session: %d %v, want its node b", code, body)
		}
	})
	t.Run("registry down", func(t *testing.T) {
		api := newAPI(t, Options{}, func(o *core.Options) {
			o.NodeName = "b"
			o.Nodes = nodeLister{list: func(context.Context) ([]core.Node, error) {
				return nil, errors.New("connection refused")
			}}
		})
		if code, body := api.do(t, "GET", "/api/v1/nodes", ""); code != 503 {
			t.Errorf("GET /api/v1/nodes with the database down: %d %v, want 503", code, body)
		}
	})
}

// TestListNodesGuarded: the nodes are behind the token and Guard, as the
// rest of /api is.
func TestListNodesGuarded(t *testing.T) {
	api := newAPI(t, Options{Token: "secret-token", ReadToken: "read-token"}, nil)
	port := api.port(t)
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"token", []string{"Authorization", "Bearer secret-token"}, 200},
		{"read-only token", []string{"Authorization", "Bearer read-token"}, 200},
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"cross-origin page", []string{"Authorization", "Bearer secret-token", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"rebound host name", []string{"Authorization", "Bearer secret-token", "Host", "evil.example:" + port}, 421},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := api.do(t, "GET", "/api/v1/nodes", "", tc.hdr...)
			if code != tc.want {
				t.Errorf("GET /api/v1/nodes: %d %v, want %d", code, body, tc.want)
			}
			if _, listed := body["nodes"]; listed != (tc.want == 200) {
				t.Errorf("GET /api/v1/nodes: %d %v: the nodes listed: %v, want %v", code, body, listed, tc.want == 200)
			}
		})
	}
}

// nodeRegistry is a nodeLister that removes nodes too (core.NodeRemover),
// with a func field; it counts the removals asked of it.
type nodeRegistry struct {
	nodeLister
	remove func(ctx context.Context, name string) error

	mu    sync.Mutex
	asked []string
}

func (r *nodeRegistry) RemoveNode(ctx context.Context, name string) error {
	r.mu.Lock()
	r.asked = append(r.asked, name)
	r.mu.Unlock()
	return r.remove(ctx, name)
}

// removals returns the names RemoveNode was asked for, and forgets them.
func (r *nodeRegistry) removals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	asked := r.asked
	r.asked = nil
	return asked
}

// newRegistry returns a registry that lists node a and removes "gone",
// refuses "busy" as in use, knows no "nobody" and fails on "down".
func newRegistry() *nodeRegistry {
	return &nodeRegistry{
		nodeLister: nodeLister{list: func(context.Context) ([]core.Node, error) {
			return []core.Node{{Name: "a", URL: "http://a:7420", Healthy: true}}, nil
		}},
		remove: func(_ context.Context, name string) error {
			switch name {
			case "gone":
				return nil
			case "busy":
				return &core.NodeInUseError{Name: name, NodeLost: 3, NodeLostIDs: []string{"s1", "s2"}}
			case "down":
				return errors.New("connection refused")
			}
			return fmt.Errorf("store: remove node %q: %w", name, core.ErrNodeNotFound)
		},
	}
}

// TestRemoveNode: DELETE /api/v1/nodes/{name} answers 204 once the
// registry removed the node, logging it once; 404 for a name it does not
// know; 409 with the registry's reason while the node may not be removed;
// 503 when the registry fails. A single server has no registry: 400,
// saying so; a registry that cannot remove: 501.
func TestRemoveNode(t *testing.T) {
	t.Run("cluster", func(t *testing.T) {
		var logs e2etest.Buffer
		reg := newRegistry()
		api := newAPI(t, Options{}, func(o *core.Options) {
			o.NodeName, o.Nodes = "a", reg
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		tests := []struct {
			name string
			code int
			msg  string
		}{
			{"gone", 204, ""},
			{"nobody", 404, `node not found: "nobody"`},
			{"busy", 409, "node busy cannot be removed: 3 sessions recorded node_lost (s1, s2 and 1 more), which the node takes up again if it comes back; " +
				"end them for good by destroying each (ptyhost kill ID), then remove the node"},
			{"down", 503, "the database is unavailable"},
		}
		for _, tc := range tests {
			code, body := api.do(t, "DELETE", "/api/v1/nodes/"+tc.name, "")
			if msg, _ := body["error"].(string); code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("DELETE node %s: %d %v, want %d %q", tc.name, code, body, tc.code, tc.msg)
			}
		}
		if got, want := strings.Join(reg.removals(), " "), "gone nobody busy down"; got != want {
			t.Errorf("removals asked of the registry: %s, want %s", got, want)
		}
		if got := strings.Count(logs.String(), "node removed from the cluster's registry"); got != 1 || !strings.Contains(logs.String(), "node=gone") {
			t.Errorf("the log says the removal %d times, want once naming node gone:\n%s", got, logs.String())
		}
	})
	t.Run("single server", func(t *testing.T) {
		api := newAPI(t, Options{}, nil)
		code, body := api.do(t, "DELETE", "/api/v1/nodes/local", "")
		if msg, _ := body["error"].(string); code != 400 || !strings.Contains(msg, "this server is not a node of a cluster") {
			t.Errorf("DELETE node local of a single server: %d %v, want 400 saying it is no node of a cluster", code, body)
		}
	})
	t.Run("registry that cannot remove", func(t *testing.T) {
		api := newAPI(t, Options{}, func(o *core.Options) { o.NodeName, o.Nodes = "a", newRegistry().nodeLister })
		if code, body := api.do(t, "DELETE", "/api/v1/nodes/gone", ""); code != 501 {
			t.Errorf("DELETE node gone with a registry that only lists: %d %v, want 501", code, body)
		}
	})
}

// TestRemoveNodeGuarded: removing a node is behind the full token and
// Guard, as every change is: the read-only token is 403, no token or a
// wrong one 401, a cross-origin page 403 and a rebound host name 421, and
// none of them reaches the registry; nor does a GET of the node's path.
func TestRemoveNodeGuarded(t *testing.T) {
	reg := newRegistry()
	api := newAPI(t, Options{Token: "secret-token", ReadToken: "read-token"}, func(o *core.Options) { o.NodeName, o.Nodes = "a", reg })
	port := api.port(t)
	tests := []struct {
		name   string
		method string
		hdr    []string
		want   int
	}{
		{"token", "DELETE", []string{"Authorization", "Bearer secret-token"}, 204},
		{"read-only token", "DELETE", []string{"Authorization", "Bearer read-token"}, 403},
		{"no token", "DELETE", nil, 401},
		{"wrong token", "DELETE", []string{"Authorization", "Bearer nope"}, 401},
		{"token in the query", "DELETE", nil, 0}, // below: ?access_token=
		{"cross-origin page", "DELETE", []string{"Authorization", "Bearer secret-token", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-origin without fetch metadata", "DELETE", []string{"Authorization", "Bearer secret-token", "Origin", "https://evil.example"}, 403},
		{"rebound host name", "DELETE", []string{"Authorization", "Bearer secret-token", "Host", "evil.example:" + port}, 421},
		{"GET", "GET", []string{"Authorization", "Bearer secret-token"}, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, want := "/api/v1/nodes/gone", tc.want
			if tc.want == 0 {
				path, want = path+"?access_token=secret-token", 204
			}
			code, body := api.do(t, tc.method, path, "", tc.hdr...)
			if code != want {
				t.Errorf("%s %s: %d %v, want %d", tc.method, path, code, body, want)
			}
			asked := reg.removals()
			if reached := len(asked) > 0; reached != (want == 204) {
				t.Errorf("%s %s: %d; the registry was asked to remove %v, want it asked: %v", tc.method, path, code, asked, want == 204)
			}
		})
	}
}
