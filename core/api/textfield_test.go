package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// The free-text fields, an environment's name and a session's project_id
// and branch_name, refuse a value past their limit and one holding a
// control character or invalid UTF-8, with 400 naming the field: through
// REST (create, and an environment's update) and through the Manager an
// embedder calls. Nothing refused is stored.
func TestTextFieldLimits(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	type field struct {
		name  string
		limit int
		// post sends value as the field in a create; put, when set, in
		// an update.
		post func(value string) (int, map[string]any)
		put  func(value string) (int, map[string]any)
		// embed sets the field through the Manager.
		embed func(value string) error
	}
	quote := func(v string) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ctx := context.Background()
	fields := []field{
		{
			name: "name", limit: core.MaxEnvironmentNameBytes,
			post: func(v string) (int, map[string]any) {
				return api.do(t, "POST", "/api/v1/environments", `{"id":"e","type":"FAKE","name":`+quote(v)+`}`)
			},
			put: func(v string) (int, map[string]any) {
				return api.do(t, "PUT", "/api/v1/environments/fake", `{"name":`+quote(v)+`}`)
			},
			embed: func(v string) error {
				_, err := api.m.CreateEnvironment(ctx, core.Environment{ID: "e", Type: "FAKE", Name: v})
				return err
			},
		},
		{
			name: "project_id", limit: core.MaxProjectIDBytes,
			post: func(v string) (int, map[string]any) {
				return api.do(t, "POST", "/api/v1/sessions", `{"id":"s1","environment_id":"fake","project_id":`+quote(v)+`}`)
			},
			embed: func(v string) error {
				_, err := api.m.CreateSession(ctx, core.CreateOptions{ID: "s1", EnvironmentID: "fake", ProjectID: v})
				return err
			},
		},
		{
			name: "branch_name", limit: core.MaxBranchNameBytes,
			post: func(v string) (int, map[string]any) {
				return api.do(t, "POST", "/api/v1/sessions", `{"id":"s2","environment_id":"fake","branch_name":`+quote(v)+`}`)
			},
			embed: func(v string) error {
				_, err := api.m.CreateSession(ctx, core.CreateOptions{ID: "s2", EnvironmentID: "fake", BranchName: v})
				return err
			},
		},
	}
	bad := []struct {
		name, value, says string
		// embedOnly: JSON cannot carry it (encoding/json decodes an
		// invalid byte as U+FFFD, valid UTF-8).
		embedOnly bool
	}{
		{"one byte too long", "", "bytes; the limit is", false}, // "": made for each field below
		{"huge", strings.Repeat("A", 900<<10), "bytes; the limit is", false},
		{"OSC title escape", "feature\x1b]0;title\x07", "control character", false},
		{"newline", "a\nb", "control character", false},
		{"DEL", "a\x7fb", "control character", false},
		{"C1 CSI", "a\u009b2Jb", "control character", false},
		{"NUL", "a\x00b", "control character", false},
		{name: "invalid UTF-8", value: "a\xffb", says: "not valid UTF-8", embedOnly: true},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			for _, b := range bad {
				value := b.value
				if value == "" {
					value = strings.Repeat("é", f.limit/2) + "x" // multi-byte: the limit is in bytes
				}
				check := func(how string, code int, body map[string]any) {
					t.Helper()
					msg, _ := body["error"].(string)
					if code != 400 || !strings.Contains(msg, f.name+" ") || !strings.Contains(msg, b.says) {
						t.Errorf("%s %s: %d %q; want 400 naming %s and saying %q", b.name, how, code, msg, f.name, b.says)
					}
				}
				if !b.embedOnly {
					code, body := f.post(value)
					check("create", code, body)
					if f.put != nil {
						code, body := f.put(value)
						check("update", code, body)
					}
				}
				err := f.embed(value)
				if !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), f.name+" ") {
					t.Errorf("%s through the Manager: %v; want ErrInvalidArgument naming %s", b.name, err, f.name)
				}
			}
			// At the limit, in printable UTF-8 (tab is a control
			// character too, but a name is one line), it is taken.
			ok := strings.Repeat("ü", f.limit/2)
			if code, body := f.post(ok); code != 201 {
				t.Fatalf("a value of %d bytes: %d %v", len(ok), code, body)
			}
		})
	}
	// Nothing refused was stored.
	if env, err := api.m.GetEnvironment(ctx, "fake"); err != nil || env.Name != "fake" {
		t.Errorf("environment fake after the refused updates: %+v, %v", env, err)
	}
}

// A session's worktree_path past PATH_MAX, or holding a NUL byte, is 400
// naming it, through REST and the Manager; other control characters are
// a path's to hold.
func TestWorktreePathLimits(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	ctx := context.Background()
	for _, tt := range []struct{ name, path, says string }{
		{"one byte too long", "/" + strings.Repeat("d", core.MaxWorktreePathBytes), "bytes; the limit is 4096"},
		{"huge", "/" + strings.Repeat("d", 900<<10), "bytes; the limit is 4096"},
		{"NUL", "/tmp/a\x00b", "NUL byte"},
	} {
		body, err := json.Marshal(map[string]string{"id": "w", "environment_id": "fake", "worktree_path": tt.path})
		if err != nil {
			t.Fatal(err)
		}
		code, resp := api.do(t, "POST", "/api/v1/sessions", string(body))
		if msg, _ := resp["error"].(string); code != 400 || !strings.Contains(msg, "worktree_path ") || !strings.Contains(msg, tt.says) {
			t.Errorf("%s: %d %q; want 400 naming worktree_path and saying %q", tt.name, code, msg, tt.says)
		}
		_, err = api.m.CreateSession(ctx, core.CreateOptions{ID: "w", EnvironmentID: "fake", WorktreePath: tt.path})
		if !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), "worktree_path ") {
			t.Errorf("%s through the Manager: %v; want ErrInvalidArgument naming worktree_path", tt.name, err)
		}
	}
	if code, resp := api.do(t, "POST", "/api/v1/sessions", `{"id":"w","environment_id":"fake","worktree_path":"/tmp/odd\ttab"}`); code != 201 {
		t.Errorf("a path with a tab: %d %v", code, resp)
	}
}
