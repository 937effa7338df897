package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// An exit with a reason is an end the session's process did not choose
// (its status is ERROR), whatever code comes with it: attach and run never
// exit 0 for it, nor for a 410 whose session is recorded ERROR.
func TestAbnormalEndIsNoSuccess(t *testing.T) {
	var gone atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/environments/"):
			writeJSON(w, http.StatusOK, `{"id": "host", "type": "HOST"}`)
			return
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/sessions":
			writeJSON(w, http.StatusCreated, `{"id": "s1", "environment_id": "host", "status": "IDLE", "cols": 80, "rows": 24}`)
			return
		case !strings.HasSuffix(r.URL.Path, "/attach"):
			writeJSON(w, http.StatusOK, `{"id": "s1", "environment_id": "host", "status": "ERROR", "cols": 80, "rows": 24}`)
			return
		case gone.Load():
			writeJSON(w, http.StatusGone, `{"error": "session \"s1\" has ended", "status": "ERROR", "exit_code": 0}`)
			return
		}
		c := acceptWithHello(w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"exit","code":0,"signal":"","reason":"docker daemon connection lost: EOF"}`))
		_ = c.Close(websocket.StatusNormalClosure, wsproto.CloseReasonExited)
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"attach", "--server", srv.URL, "s1"},
		{"run", "--server", srv.URL, "--", "true"},
	} {
		code, _, stderr := runCmd(t, args...)
		if code != 1 || !strings.Contains(stderr, "session ended: docker daemon connection lost: EOF") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and the reason", args[0], code, stderr)
		}
	}
	gone.Store(true)
	if code, _, stderr := runCmd(t, "attach", "--server", srv.URL, "s1"); code != 1 {
		t.Errorf("attach to a session recorded ERROR with exit code 0 (410): exit %d, stderr %q; want 1", code, stderr)
	}
}
