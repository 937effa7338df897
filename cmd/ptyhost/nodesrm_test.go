package main

import (
	"strings"
	"testing"
)

// TestNodesRmCommand: 'nodes rm NAME...' asks the server to remove each
// node, printing nothing when it did; a refusal prints the server's
// message and exits 1, after trying the other names; a missing or
// impossible name, a command after the flags or one unknown is a usage
// error (exit 2) that asks the server nothing. 'nodes ls' lists, as
// 'nodes' does.
func TestNodesRmCommand(t *testing.T) {
	const busy = "node busy cannot be removed: its lease is live (it expires in 1.5s unless renewed): it runs, or stopped or died less than a lease ago; " +
		"stop the node first, and remove it once its lease has expired"
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		deletes string // the DELETE paths the server got, space-separated
	}{
		{"removed", []string{"nodes", "rm", "gone"}, 0, "", "", "/api/v1/nodes/gone"},
		{"refused", []string{"nodes", "rm", "busy"}, 1, "", "ptyhost: nodes rm busy: " + busy + " (HTTP 409)\n", "/api/v1/nodes/busy"},
		{"unknown", []string{"nodes", "rm", "nobody"}, 1, "", "ptyhost: nodes rm nobody: node not found: \"nobody\" (HTTP 404)\n", "/api/v1/nodes/nobody"},
		{"single server", []string{"nodes", "rm", "local"}, 1, "",
			"ptyhost: nodes rm local: invalid argument: this server is not a node of a cluster: it keeps no registry of nodes to remove \"local\" from (HTTP 400)\n", "/api/v1/nodes/local"},
		{"several", []string{"nodes", "rm", "busy", "gone"}, 1, "", "ptyhost: nodes rm busy: " + busy + " (HTTP 409)\n", "/api/v1/nodes/busy /api/v1/nodes/gone"},
		{"no name", []string{"nodes", "rm"}, 2, "", "nodes rm: want at least one node NAME", ""},
		{"empty name", []string{"nodes", "rm", ""}, 2, "", "nodes rm: a node name must not be empty", ""},
		{"name with a slash", []string{"nodes", "rm", "gone", "a/b"}, 2, "", `nodes rm: "a/b" is not a node name: no name has a '/'`, ""},
		{"flag before rm", []string{"nodes", "--json", "rm", "gone"}, 2, "", `nodes: the command "rm" comes first, before the flags: 'ptyhost nodes rm [flags]'`, ""},
		{"unknown command", []string{"nodes", "frobnicate"}, 2, "", `nodes: unknown command "frobnicate"`, ""},
		{"ls", []string{"nodes", "ls"}, 0, "NAME  URL", "", ""},
		{"ls with an argument", []string{"nodes", "ls", "gone"}, 2, "", `nodes ls: unexpected argument "gone"`, ""},
		{"help", []string{"nodes", "rm", "--help"}, 0, "Usage: ptyhost nodes rm [flags] NAME...", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.respond("GET /api/v1/nodes", 200, `{"nodes": [{"name": "a", "url": "http://a:7420", "healthy": true}]}`)
			f.respond("DELETE /api/v1/nodes/gone", 204, "")
			f.respond("DELETE /api/v1/nodes/busy", 409, `{"error": "`+busy+`"}`)
			f.respond("DELETE /api/v1/nodes/nobody", 404, `{"error": "node not found: \"nobody\""}`)
			f.respond("DELETE /api/v1/nodes/local", 400, `{"error": "invalid argument: this server is not a node of a cluster: it keeps no registry of nodes to remove \"local\" from"}`)
			code, stdout, stderr := runCmd(t, append(tt.args, "--server", f.srv.URL)...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.stdout == "" && stdout != "" || tt.code == 1 && stderr != tt.stderr {
				t.Errorf("stdout %q, stderr %q; want stdout %q, stderr %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			var deletes []string
			for _, r := range f.requestsSoFar() {
				if r.method == "DELETE" {
					deletes = append(deletes, r.path)
				}
			}
			if got := strings.Join(deletes, " "); got != tt.deletes {
				t.Errorf("the server got DELETE %q, want %q", got, tt.deletes)
			}
		})
	}
}
