package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ptyhost/ptyhost/core"
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
