package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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
