package main

import (
	"errors"
	"strings"
	"testing"
)

// An empty --server or --token of a client command is refused (exit 2)
// before any request, as serve refuses an empty --token: 'ptyhost stop
// --hang-up --server "$PROD"' with PROD unset stopped, and hung up, the
// server PTYHOST_SERVER (or the default address) names instead.
func TestClientEmptyServerOrToken(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/sessions", 200, `{"sessions": []}`)
	t.Setenv("PTYHOST_SERVER", f.srv.URL)
	t.Setenv("PTYHOST_TOKEN", "")
	for _, args := range [][]string{
		{"ls", "--server", ""},
		{"ls", "--server="},
		{"kill", "--server", "", "s1"},
		{"stop", "--hang-up", "--server", ""},
		{"env", "rm", "--server", "", "e1"},
		{"plugins", "restart", "--server", "", "host"},
		{"nodes", "rm", "--server", "", "gone"},
		{"ls", "--token", ""},
		{"prune", "--token="},
	} {
		var errOut syncBuffer
		err := run(t.Context(), args, stdio{in: strings.NewReader(""), out: &syncBuffer{}, err: &errOut})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), "omit the flag") {
			t.Errorf("%q: err = %v; want a usage error saying it is empty", args, err)
		}
	}
	if reqs := f.requestsSoFar(); len(reqs) != 0 {
		t.Errorf("requests sent: %v; want none", reqs)
	}
	// Omitted, they take the variables.
	if code, _, stderr := runCmd(t, "ls", "-q"); code != 0 {
		t.Errorf("ls without --server: exit %d, %s", code, stderr)
	}
}
