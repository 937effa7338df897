package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestIDArgsRefused: an ID that can name no environment or session (empty,
// "." or "..", with a '/') is a usage error (exit status 2) before any
// request, even after a good one, that names the command as its other
// usage errors do; "." used to reach the environment list through a
// redirect and show a blank environment with exit status 0, and kill and
// restart refused an empty ID after acting on those before it, without
// their name.
func TestIDArgsRefused(t *testing.T) {
	f := newFakeServer(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"show .", []string{"env", "show", "."}, `env show: "." is not an environment ID`},
		{"show ..", []string{"env", "show", ".."}, `env show: ".." is not an environment ID`},
		{"show empty", []string{"env", "show", ""}, "env show: an environment ID must not be empty"},
		{"show a path", []string{"env", "show", "host/health"}, `env show: "host/health" is not an environment ID: no ID has a '/'`},
		{"update .", []string{"env", "update", ".", "--name", "x"}, `env update: "." is not an environment ID`},
		{"update empty", []string{"env", "update", "", "--name", "x"}, `env update: an environment ID must not be empty`},
		{"rm .. after a good one", []string{"env", "rm", "dev", ".."}, `env rm: ".." is not an environment ID`},
		{"rm empty", []string{"env", "rm", ""}, "env rm: an environment ID must not be empty"},
		{"health .", []string{"env", "health", "host", "."}, `env health: "." is not an environment ID`},
		{"health empty", []string{"env", "health", ""}, `env health: an environment ID must not be empty`},
		{"run --env .", []string{"run", "--env", ".", "--", "true"}, `run: --env: "." is not an environment ID`},
		{"kill .", []string{"kill", "."}, `kill: "." is not a session ID`},
		{"kill empty", []string{"kill", ""}, "kill: a session ID must not be empty"},
		{"kill empty after a good one", []string{"kill", "s1", ""}, "kill: a session ID must not be empty"},
		{"attach ..", []string{"attach", ".."}, `attach: ".." is not a session ID`},
		{"attach empty", []string{"attach", ""}, "attach: a session ID must not be empty"},
		{"restart empty after a good one", []string{"restart", "s1", ""}, "restart: a session ID must not be empty"},
		{"rec empty", []string{"rec", ""}, "rec: a session ID must not be empty"},
		{"kill a path", []string{"kill", "s1/restart"}, "kill: \"s1/restart\" is not a session ID: no ID has a '/'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append(tt.args, "--server", f.srv.URL)...)
			if code != 2 || stdout != "" || stderr != "ptyhost: "+tt.want+"\n" && !strings.HasPrefix(stderr, "ptyhost: "+tt.want+":") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, tt.want)
			}
		})
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("refused IDs sent requests: %v", r)
	}
}

// TestClientRefusesRedirects: the API never redirects, so a redirect is
// an error saying where it pointed, and is not followed: its target's
// answer is not taken for the API's.
func TestClientRefusesRedirects(t *testing.T) {
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			writeJSON(w, http.StatusOK, `{"environments": [], "sessions": [], "id": "", "type": ""}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{
		{"env", "show", "host"},
		{"env", "ls"},
		{"ls"},
		{"env", "rm", "host"},
		{"rec", "s1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append(args, "--server", srv.URL)...)
			want := "the server redirected the request to " + srv.URL + "/elsewhere"
			if code != 1 || stdout != "" || !strings.Contains(stderr, want) || !strings.Contains(stderr, "(HTTP 301)") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, want)
			}
		})
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the client followed %d redirects", n)
	}
}

// TestEnvConfigFileLimits: --config-file refuses a missing file, what is
// not a regular file and a file over 1 MiB (exit status 2, naming the
// flag, no request), and takes one of
// exactly 1 MiB.
func TestEnvConfigFileLimits(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	large := filepath.Join(dir, "large.json")
	if err := os.WriteFile(large, []byte(`{"a": "`+strings.Repeat("x", maxConfigFileBytes)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"add a device", []string{"env", "add", "--type", "HOST", "--config-file", "/dev/zero"}, "env add: --config-file /dev/zero is larger than 1 MiB"},
		{"update a device", []string{"env", "update", "dev", "--config-file", "/dev/zero"}, "env update: --config-file /dev/zero is larger than 1 MiB"},
		{"add a directory", []string{"env", "add", "--type", "HOST", "--config-file", dir}, "env add: --config-file " + dir + " is a directory"},
		{"add over 1 MiB", []string{"env", "add", "--type", "HOST", "--config-file", large}, "env add: --config-file " + large + " is larger than 1 MiB"},
		{"add a missing file", []string{"env", "add", "--type", "HOST", "--config-file", filepath.Join(dir, "missing.json")}, "env add: --config-file " + filepath.Join(dir, "missing.json") + ": no such file or directory"},
		{"update a missing file", []string{"env", "update", "dev", "--config-file", filepath.Join(dir, "missing.json")}, "env update: --config-file " + filepath.Join(dir, "missing.json") + ": no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, append(tt.args, "--server", f.srv.URL)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("refused files sent requests: %v", r)
	}

	largest := filepath.Join(dir, "largest.json")
	pad := maxConfigFileBytes - len(`{"a": ""}`)
	if err := os.WriteFile(largest, []byte(`{"a": "`+strings.Repeat("x", pad)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f.respond("GET /api/v1/plugins", 200, pluginTypes)
	if code, stdout, stderr := runCmd(t, "env", "add", "--type", "HOST", "--config-file", largest, "--server", f.srv.URL); code != 0 {
		t.Errorf("a file of exactly 1 MiB: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
