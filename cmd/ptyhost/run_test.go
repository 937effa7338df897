package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// serveEnvironment answers GET /api/v1/environments/{id} from the canned
// environment list.
func (f *fakeServer) serveEnvironment(w http.ResponseWriter, id string) {
	f.mu.Lock()
	list := f.canned["GET /api/v1/environments"].body
	f.mu.Unlock()
	var out struct {
		Environments []map[string]any `json:"environments"`
	}
	if err := json.Unmarshal([]byte(list), &out); err == nil {
		for _, e := range out.Environments {
			if e["id"] == id {
				b, _ := json.Marshal(e)
				writeJSON(w, http.StatusOK, string(b))
				return
			}
		}
	}
	writeJSON(w, http.StatusNotFound, `{"error": "environment not found: \"`+id+`\""}`)
}

// run sends the local directory only to a HOST environment; elsewhere the
// environment's default applies unless --cwd is given, which is sent as
// written.
func TestRunWorkingDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	envs := `{"environments": [
  {"id": "host", "type": "HOST", "config": {}},
  {"id": "dock", "type": "DOCKER", "config": {"image": "debian:12"}},
  {"id": "box", "type": "DOCKER", "config": {"container": "dev-box"}},
  {"id": "dev", "type": "SSH", "config": {"host": "dev.example.com"}}
]}`
	tests := []struct {
		name string
		args []string
		// want is the worktree_path sent; absent when "".
		want string
	}{
		{"host, default", []string{"--env", "host"}, wd},
		{"host, relative", []string{"--env", "host", "--cwd", "sub/dir"}, filepath.Join(wd, "sub/dir")},
		{"host, absolute", []string{"--env", "host", "--cwd", "/srv/x/../y"}, "/srv/y"},
		{"docker image, default", []string{"--env", "dock"}, ""},
		{"docker image, given", []string{"--env", "dock", "--cwd", "/srv/proj"}, "/srv/proj"},
		{"docker exec, default", []string{"--env", "box"}, ""},
		{"docker exec, given", []string{"--env", "box", "--cwd", "/app"}, "/app"},
		{"ssh, default", []string{"--env", "dev"}, ""},
		{"ssh, tilde", []string{"--env", "dev", "--cwd", "~"}, "~"},
		{"ssh, tilde path", []string{"--env", "dev", "--cwd", "~/src/app"}, "~/src/app"},
		{"ssh, relative", []string{"--env", "dev", "--cwd", "src"}, "src"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.respond("GET /api/v1/environments", 200, envs)
			pr, stdin := newStdin(t)
			c := startCmd(t.Context(), append([]string{"run", "--server", f.srv.URL}, tt.args...), pr)
			typeIn(t, stdin, "exit 0\n")
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, c.err.String())
			}
			r := f.requestsSoFar()
			if len(r) != 3 || r[0].method != http.MethodGet || r[0].path != "/api/v1/environments/"+tt.args[1] ||
				r[1].method+" "+r[1].path != "POST /api/v1/sessions" {
				t.Fatalf("requests %+v, want GET the environment, POST the session, attach", r)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(r[1].body), &body); err != nil {
				t.Fatal(err)
			}
			got, sent := body["worktree_path"]
			switch {
			case tt.want == "" && sent:
				t.Errorf("worktree_path %q sent, want none (the environment's default)", got)
			case tt.want != "" && got != tt.want:
				t.Errorf("worktree_path %v, want %q", got, tt.want)
			}
		})
	}
}

// An environment that does not exist stops run before it creates
// anything.
func TestRunUnknownEnvironment(t *testing.T) {
	f := newFakeServer(t)
	code, _, stderr := runCmd(t, "run", "--server", f.srv.URL, "--env", "nope")
	if code != 1 || stderr != "ptyhost: environment not found: \"nope\" (HTTP 404)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, r := range f.requestsSoFar() {
		if r.method == http.MethodPost {
			t.Errorf("run sent %s %s", r.method, r.path)
		}
	}
}

// When the server goes away and run does not reconnect, one line says
// what happened, as after any attachment: the session goes on and how to
// come back when run could not destroy it (the server is gone) or was
// told to keep it, and that it is destroyed when run could. run printed
// "session new1 may still be running: ..." (or, with --keep, "left
// running") before the attachment's own line, which already said so.
func TestRunServerGoesAwayOneLine(t *testing.T) {
	const goesOn = "ptyhost: the server is restarting; the session goes on"
	tests := []struct {
		name       string
		keep       bool
		deleteFail bool
		wantStderr string
	}{
		{"destroyed", false, false, goesOn + "; session new1 destroyed as run ended\n"},
		{"not destroyed", false, true, goesOn + "; reattach with 'ptyhost attach new1'\n"},
		{"keep", true, false, goesOn + "; reattach with 'ptyhost attach new1'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			if tt.deleteFail {
				f.respond("DELETE /api/v1/sessions/new1", http.StatusServiceUnavailable, `{"error": "the server is shutting down"}`)
			}
			args := []string{"run", "--reconnect", "0", "--server", f.srv.URL}
			if tt.keep {
				args = append(args, "--keep")
			}
			pr, stdin := newStdin(t)
			c := startCmd(t.Context(), args, pr)
			c.out.waitFor(t, "replayed")
			typeIn(t, stdin, "restart\n")
			if code := c.wait(t); code != 1 || c.err.String() != tt.wantStderr {
				t.Errorf("exit %d, stderr %q; want 1, %q", code, c.err.String(), tt.wantStderr)
			}
			deleted := slices.ContainsFunc(f.requestsSoFar(), func(r fakeRequest) bool {
				return r.method+" "+r.path == "DELETE /api/v1/sessions/new1"
			})
			if deleted == tt.keep {
				t.Errorf("DELETE sent: %v, want %v", deleted, !tt.keep)
			}
		})
	}
}
