package main

import (
	"strings"
	"testing"
)

// runPruneCmd runs `ptyhost prune args...` as main would, through
// runPrune.
func runPruneCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	err := runPrune(t.Context(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	code = exitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

func TestPrune(t *testing.T) {
	f := newFakeServer(t)
	for _, tt := range []struct {
		body, want string
	}{
		{`{"deleted": 2}`, "deleted 2 ended session records\n"},
		{`{"deleted": 1}`, "deleted 1 ended session record\n"},
		{`{"deleted": 0}`, "deleted 0 ended session records\n"},
	} {
		f.respond("POST /api/v1/sessions/prune", 200, tt.body)
		code, out, stderr := runPruneCmd(t, "--server", f.srv.URL)
		if code != 0 || out != tt.want || stderr != "" {
			t.Errorf("prune answered %s: exit %d, stdout %q, stderr %q; want %q", tt.body, code, out, stderr, tt.want)
		}
	}
	r := f.requestsSoFar()
	if last := r[len(r)-1]; last.method+" "+last.path != "POST /api/v1/sessions/prune" || last.body != "{}" {
		t.Errorf("sent %s %s %q, want POST /api/v1/sessions/prune {}", last.method, last.path, last.body)
	}

	f.respond("POST /api/v1/sessions/prune", 503, `{"error": "the database is unavailable"}`)
	if code, out, stderr := runPruneCmd(t, "--server", f.srv.URL); code != 1 || out != "" || stderr != "ptyhost: the database is unavailable (HTTP 503)\n" {
		t.Errorf("prune failing: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, _, stderr := runPruneCmd(t, "--server", f.srv.URL, "s1"); code != 2 || !strings.Contains(stderr, `prune: unexpected argument "s1"`) {
		t.Errorf("prune s1: exit %d, stderr %q; want a usage error", code, stderr)
	}
	if code, out, _ := runPruneCmd(t, "--help"); code != 0 || !strings.HasPrefix(out, "Usage: ptyhost prune [flags]") {
		t.Errorf("prune --help: exit %d, %q", code, out)
	}
}
