package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hasControl reports whether s holds a control character other than the
// newlines, carriage returns and tabs the CLI itself writes.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r == 0x1b || r == 0x07 || r >= 0x80 && r <= 0x9f
	})
}

// TestServerTextIsPrintable: escape sequences in what the server sends —
// a plugin's version, types and reason, an API error's message (a
// plugin's error text flows into it), environments, nodes, a session's
// ID — never reach the operator's terminal: they are printed as '?'.
func TestServerTextIsPrintable(t *testing.T) {
	const evil = `\u001b]0;pwned\u0007\u001b[2J\u009b1m`
	f := newFakeServer(t)
	f.respond("GET /api/v1/plugins", 200, `{"plugins": [{"name": "evil`+evil+`", "version": "1.0`+evil+`",
		"types": ["T`+evil+`"], "capabilities": [], "state": "failed", "reason": "boom`+evil+`", "path": "/p`+evil+`"}]}`)
	f.respond("POST /api/v1/plugins/x/restart", 500, `{"error": "plugin says `+evil+`"}`)
	f.respond("GET /api/v1/nodes", 200, `{"nodes": [{"name": "n`+evil+`", "url": "http://x`+evil+`", "healthy": true, "version": "v`+evil+`"}]}`)
	f.respond("GET /api/v1/environments", 200, `{"environments": [{"id": "e`+evil+`", "name": "n`+evil+`", "type": "HOST`+evil+`"}]}`)
	f.respond("GET /api/v1/environments/dev", 200, `{"id": "dev`+evil+`", "name": "n`+evil+`", "type": "HOST", "config": {"k": "v`+evil+`"}}`)
	f.respond("DELETE /api/v1/environments/dev", 409, `{"error": "in use`+evil+`"}`)
	f.respond("GET /api/v1/sessions", 200, `{"sessions": [{"id": "s`+evil+`", "environment_id": "host", "status": "ACTIVE"}]}`)
	for _, args := range [][]string{
		{"plugins"},
		{"plugins", "restart", "x"},
		{"nodes"},
		{"env", "ls"},
		{"env", "show", "dev"},
		{"env", "rm", "dev"},
		{"ls", "-q"},
	} {
		_, stdout, stderr := runCmd(t, append(args, "--server", f.srv.URL)...)
		if hasControl(stdout) || hasControl(stderr) || !strings.Contains(stdout+stderr, "?]0;pwned??[2J?1m") {
			t.Errorf("%s: stdout %q, stderr %q; want the escape sequences made harmless", strings.Join(args, " "), stdout, stderr)
		}
	}

	// Attached: the server's error message and the session's end.
	c, stdin := startAttach(t, f, "s1")
	typeIn(t, stdin, "evil\r")
	c.wait(t)
	if stderr := c.err.String(); hasControl(stderr) || !strings.Contains(stderr, "bad?]0;pwned") || !strings.Contains(stderr, "gone?[31m?2J") {
		t.Errorf("attach: stderr %q; want the escape sequences made harmless", stderr)
	}
}

// --json output goes through jsonText: the C1 controls and DEL that JSON
// lets a string hold raw, and invalid bytes, reach the terminal as \u
// escapes, and the JSON still says the same (an invalid byte decodes to
// U+FFFD either way).
func TestJSONOutputEscapesControls(t *testing.T) {
	body := "{\"sessions\": [{\"id\": \"s1\u009b2J\x9b31m\x7f\", \"environment_id\": \"h\u00e9\", \"status\": \"ACTIVE\"}]}"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, body)
	}))
	defer srv.Close()
	code, stdout, stderr := runCmd(t, "ls", "--json", "--server", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, c := range []string{"\u009b", "\x9b", "\x7f"} {
		if strings.Contains(stdout, c) {
			t.Errorf("ls --json printed %q from the server: %q", c, stdout)
		}
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("the output is no longer JSON: %v\n%s", err, stdout)
	}
	if len(got) != 1 || got[0]["id"] != "s1\u009b2J\ufffd31m\x7f" || got[0]["environment_id"] != "h\u00e9" {
		t.Errorf("the output says %q, want what the server said", got)
	}
}

// Bidirectional format characters from the server (RLO, LRI, PDF...) are
// shown as '?': they would make an ID or a message read otherwise than it
// is. Right-to-left letters themselves are text, and stay.
func TestServerTextBidiControls(t *testing.T) {
	for _, tt := range []struct{ in, cell, msg string }{
		{"s1\u202egnp.exe", "s1?gnp.exe", "s1?gnp.exe"},
		{"a\u2066b\u2069c\u200fd", "a?b?c?d", "a?b?c?d"},
		{"x\u061cy\nz", "x?y?z", "x?y\nz"},
		{"שלום", "שלום", "שלום"},
	} {
		if got := cell(tt.in); got != tt.cell {
			t.Errorf("cell(%q) = %q, want %q", tt.in, got, tt.cell)
		}
		if got := printableMessage(tt.in); got != tt.msg {
			t.Errorf("printableMessage(%q) = %q, want %q", tt.in, got, tt.msg)
		}
	}
}

// --json escapes the bidirectional format characters too: an ID holding
// RLO would print reversed. The JSON still says the same.
func TestJSONOutputEscapesBidi(t *testing.T) {
	var out strings.Builder
	if err := printJSON(&out, json.RawMessage("{\"id\": \"s1\u202egnp.exe\u2066\"}")); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\u202e\u2066") {
		t.Errorf("--json printed %q: the bidi controls reach the terminal raw", out.String())
	}
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(out.String()), &v); err != nil || v.ID != "s1\u202egnp.exe\u2066" {
		t.Errorf("the output decodes to %q, %v", v.ID, err)
	}
}
