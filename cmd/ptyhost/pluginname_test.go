package main

import (
	"strings"
	"testing"
)

// 'ptyhost plugins restart NAME' refuses a NAME that can name no plugin
// (empty, . or .., or with a '/') before any request, exit 2, as the
// commands that take an ID do: "" and "." were sent, the server cleaned
// the path and redirected, and the error spoke of a redirect and --server.
func TestPluginsRestartRefusesImpossibleNames(t *testing.T) {
	f := newFakeServer(t)
	for name, want := range map[string]string{
		"":    "plugins restart: a plugin name must not be empty",
		".":   `plugins restart: "." is not a plugin name`,
		"..":  `plugins restart: ".." is not a plugin name`,
		"a/b": `plugins restart: "a/b" is not a plugin name`,
	} {
		code, _, stderr := runCmd(t, "plugins", "restart", "--server", f.srv.URL, name)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("plugins restart %q: exit %d, stderr %q; want 2 saying %q", name, code, stderr, want)
		}
	}
	if reqs := f.requestsSoFar(); len(reqs) != 0 {
		t.Errorf("requests sent: %v; want none", reqs)
	}
}
