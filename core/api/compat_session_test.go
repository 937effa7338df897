package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// The compatibility endpoint's session life: exit, close codes, restart,
// bad messages, authentication and viewers, slow clients (helpers in
// compat_test.go).

func TestCompatExit(t *testing.T) {
	for _, tt := range []struct {
		name       string
		st         shared.ExitStatus
		wantSignal any
	}{
		{"code", shared.ExitStatus{Code: 3}, nil},
		{"killed", shared.ExitStatus{Code: 137, Signal: "SIGKILL"}, 9.0},
		{"hung up", shared.ExitStatus{Code: 129, Signal: "SIGHUP"}, 1.0},
	} {
		wantExit := func(t *testing.T, m map[string]any) {
			t.Helper()
			if sig, ok := m["signal"]; m["type"] != "exit" || m["exitCode"] != float64(tt.st.Code) || !ok || sig != tt.wantSignal {
				t.Errorf("message %v, want exit with exitCode %d and signal %v", m, tt.st.Code, tt.wantSignal)
			}
		}
		t.Run(tt.name, func(t *testing.T) {
			api := newAPI(t, Options{}, nil)
			_, p := api.create(t, "e")
			c := compatAttached(t, api, "/ws/claude/e", "e", 1)
			// Output first, a cut character as U+FFFD, then the exit.
			p.Output(t, []byte("bye \xe2\x82"))
			p.End(tt.st)
			data, m := compatUntil(t, c, "exit")
			if data != "bye \ufffd" {
				t.Errorf("data before the exit %q", data)
			}
			wantExit(t, m)
			wantClose(t, c, websocket.StatusNormalClosure, "Session exited")

			// While it lingers, a client that comes gets the history and
			// the exit.
			late, _, err := dialCompat(t, api, "/ws/terminal/e", nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := compatNext(t, late); m["type"] != "scrollback" || m["content"] != "bye " {
				t.Errorf("late client's first message %v, want the scrollback", m)
			}
			wantData(t, late, "\ufffd")
			wantExit(t, compatNext(t, late))
			wantClose(t, late, websocket.StatusNormalClosure, "Session exited")
		})
		t.Run(tt.name+" past its linger", func(t *testing.T) {
			api := newAPI(t, Options{}, func(o *core.Options) { o.Linger = time.Millisecond })
			_, p := api.create(t, "e")
			p.End(tt.st)
			eventually(t, "linger to end", func() bool {
				return errors.Is(api.m.Attachable("e"), core.ErrSessionNotFound)
			})
			late, _, err := dialCompat(t, api, "/ws/claude/e", nil)
			if err != nil {
				t.Fatal(err)
			}
			wantExit(t, compatNext(t, late))
			wantClose(t, late, websocket.StatusNormalClosure, "Session exited")
		})
	}
}

func TestCompatCloseCodes(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.MaxClients = 1 })
	c, _, err := dialCompat(t, api, "/ws/claude/nope", nil)
	if err != nil {
		t.Fatalf("an unknown session's upgrade is accepted, then closed: %v", err)
	}
	wantClose(t, c, websocket.StatusPolicyViolation, "session not found: nope")

	api.create(t, "d")
	c = compatAttached(t, api, "/ws/claude/d", "d", 1)
	// Past the client limit: 1013, and the first client stays.
	extra, _, err := dialCompat(t, api, "/ws/claude/d", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantClose(t, extra, websocket.StatusTryAgainLater, wsproto.CloseReasonTooManyClients)
	if code, _ := api.do(t, "DELETE", "/api/v1/sessions/d", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	wantClose(t, c, websocket.StatusNormalClosure, "Session destroyed")

	_, p := api.create(t, "crash")
	c = compatAttached(t, api, "/ws/claude/crash", "crash", 1)
	p.Crash()
	compatUntil(t, c, "exit")
	wantClose(t, c, websocket.StatusInternalError, wsproto.CloseReasonPluginCrashed)
}

func TestCompatBadMessages(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "bad")
	c := compatAttached(t, api, "/ws/claude/bad", "bad", 1)
	for _, bad := range []struct {
		typ  websocket.MessageType
		data string
	}{
		{websocket.MessageText, `{"type":`},
		{websocket.MessageText, `"just a string"`},
		{websocket.MessageText, `null`},
		{websocket.MessageText, `[]`},
		{websocket.MessageText, `7`},
		{websocket.MessageText, `{"type":7}`},
		{websocket.MessageText, `{}`},
		{websocket.MessageText, `{"type":"dance"}`},
		{websocket.MessageText, `{"type":"input"}`},
		{websocket.MessageText, `{"type":"input","data":null}`},
		{websocket.MessageText, `{"type":"input","data":42}`},
		{websocket.MessageText, `{"type":"resize"}`},
		{websocket.MessageText, `{"type":"resize","data":{"cols":80}}`},
		{websocket.MessageText, `{"type":"resize","data":{"cols":"80","rows":24}}`},
		{websocket.MessageText, `{"type":"resize","data":{"cols":0,"rows":0}}`},
		{websocket.MessageText, `{"type":"resize","data":{"cols":5000,"rows":5000}}`},
		{websocket.MessageText, `{"type":"resize","cols":80,"rows":24}`},
		{websocket.MessageBinary, "ls\r"},
		{websocket.MessageText, `{"type":"input","data":"` + strings.Repeat("x", wsproto.MaxInputFrame) + `"}`},
	} {
		if err := c.Write(t.Context(), bad.typ, []byte(bad.data)); err != nil {
			t.Fatal(err)
		}
		m := compatNext(t, c)
		msg, _ := m["message"].(string)
		if m["type"] != "error" || msg == "" {
			t.Errorf("%.60q: answered %v, want an error message", bad.data, m)
		}
		// In JSON's words, not Go's.
		for _, internal := range []string{"Go ", "struct", "compatClientMessage", "json:"} {
			if strings.Contains(msg, internal) {
				t.Errorf("%.60q: %q shows Go's %q", bad.data, msg, internal)
			}
		}
	}
	select {
	case got := <-p.Input():
		t.Errorf("a refused message was written: %.40q", got)
	case got := <-p.Resizes():
		t.Errorf("a refused message resized the terminal to %+v", got)
	default:
	}
	// The connection and the session go on.
	compatSend(t, c, `{"type":"input","data":"still here\r"}`)
	if got := recvWithin(t, p.Input()); string(got) != "still here\r" {
		t.Errorf("input = %q", got)
	}
	p.Output(t, []byte("ok"))
	wantData(t, c, "ok")
}

func TestCompatRestart(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, old := api.create(t, "r")
	c := compatAttached(t, api, "/ws/claude/r", "r", 1)
	old.Output(t, []byte("old\r\n"))
	wantData(t, c, "old\r\n")
	compatSend(t, c, `{"type":"restart"}`)
	eventually(t, "the new program to start", func() bool { return api.env.Count() == 2 })
	if kills, _ := old.Counts(); kills == 0 {
		t.Error("the old program was not killed")
	}
	// Still attached: the new program's output follows as data.
	api.env.Last(t).Output(t, []byte("new\r\n"))
	wantData(t, c, "new\r\n")
	if rec, _ := api.m.GetSession(t.Context(), "r"); rec.Status != core.StatusActive || rec.ActiveConnections != 1 {
		t.Errorf("after the restart: %+v", rec)
	}
}

func TestCompatAuthAndOrigin(t *testing.T) {
	api := newAPI(t, Options{Token: "tok", ReadToken: "ro"}, nil)
	_, p := api.create(t, "a")
	p.Output(t, []byte("$ "))
	waitInRing(t, api, "a", 2)
	for _, tt := range []struct {
		name  string
		query string
		hdr   http.Header
		want  int // 0: attached
	}{
		{"no token", "", nil, 401},
		{"wrong token", "", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"wrong query token", "?access_token=nope", nil, 401},
		{"header", "", http.Header{"Authorization": {"Bearer tok"}}, 0},
		{"query", "?access_token=tok", nil, 0},
		{"cross-origin", "", http.Header{"Authorization": {"Bearer tok"}, "Origin": {"https://evil.example"}}, 403},
		{"read token writing", "", http.Header{"Authorization": {"Bearer ro"}}, 403},
		{"read token reading", "?mode=read", http.Header{"Authorization": {"Bearer ro"}}, 0},
		{"bad mode", "?mode=sudo", http.Header{"Authorization": {"Bearer tok"}}, 400},
		{"mode twice", "?mode=read&mode=write", http.Header{"Authorization": {"Bearer tok"}}, 400},
		{"read token, mode twice", "?mode=read&mode=write", http.Header{"Authorization": {"Bearer ro"}}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dialCompat(t, api, "/ws/claude/a"+tt.query, tt.hdr)
			if tt.want != 0 {
				if err == nil || resp == nil || resp.StatusCode != tt.want {
					t.Fatalf("upgrade: %v %v, want status %d", err, resp, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			eventually(t, "the client to attach", func() bool {
				rec, _ := api.m.GetSession(t.Context(), "a")
				return rec.ActiveConnections == 1
			})
			p.Output(t, []byte(tt.name))
			if m := compatNext(t, c); m["type"] != "scrollback" { // the earlier cases' output
				t.Fatalf("first message %v, want the scrollback", m)
			}
			wantData(t, c, tt.name)
			c.Close(websocket.StatusNormalClosure, "")
			eventually(t, "the client to leave", func() bool {
				rec, _ := api.m.GetSession(t.Context(), "a")
				return rec.ActiveConnections == 0
			})
		})
	}
}

func TestCompatReadOnly(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "ro")
	c := compatAttached(t, api, "/ws/claude/ro?mode=read", "ro", 1)
	for msg, want := range map[string]string{
		`{"type":"input","data":"rm -rf /\r"}`:           wsproto.MsgReadOnlyInput,
		`{"type":"resize","data":{"cols":90,"rows":20}}`: wsproto.MsgReadOnlyResize,
		`{"type":"restart"}`:                             "restart refused: this client attached read-only (mode=read)",
	} {
		compatSend(t, c, msg)
		if m := compatNext(t, c); m["type"] != "error" || m["message"] != want {
			t.Errorf("%s answered %v, want error %q", msg, m, want)
		}
	}
	if api.env.Count() != 1 {
		t.Error("a viewer restarted the session")
	}
	select {
	case got := <-p.Input():
		t.Errorf("a viewer's input was written: %q", got)
	default:
	}
	// It still watches.
	p.Output(t, []byte("watch"))
	wantData(t, c, "watch")
}

func TestCompatStalledClientIsReset(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.ScrollbackBytes = 64 << 10 })
	_, p := api.create(t, "st")
	stalled := compatAttached(t, api, "/ws/claude/st", "st", 1) // not read until the end
	live, _, err := dialAttach(t, api, "st", nil)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, live, "hello")
	// As TestStalledClientDoesNotSlowAnother.
	floodInStep(t, p, live)
	p.Output(t, []byte("END"))
	// The stalled client, once it reads, is told to reset its terminal,
	// and the replay follows as data, up to the end.
	for {
		m := compatNext(t, stalled)
		if m["type"] != "data" {
			t.Fatalf("message %v", m)
		}
		if m["content"] == resetTerminal {
			break
		}
	}
	// More resets may follow: the client was behind the socket's buffers
	// too. Between them, only the session's output.
	replay := compatUntilData(t, stalled, "END")
	replay = strings.ReplaceAll(strings.TrimSuffix(replay, "END"), resetTerminal, "")
	if strings.Trim(replay, "0123456789abcde\n") != "" {
		t.Errorf("replay after the reset %.80q...: not the session's output", replay)
	}
}

// compatUntilData reads data messages until their content ends in suffix.
func compatUntilData(t *testing.T, c *websocket.Conn, suffix string) string {
	t.Helper()
	var data strings.Builder
	for !strings.HasSuffix(data.String(), suffix) {
		m := compatNext(t, c)
		if m["type"] != "data" {
			t.Fatalf("after %d bytes of data: %v", data.Len(), m)
		}
		data.WriteString(m["content"].(string))
	}
	return data.String()
}

// A server that stops and hangs its sessions up closes with 1001, after
// the session's exit, as the main endpoint does.
func TestCompatShutdown(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "down")
	c := compatAttached(t, api, "/ws/claude/down", "down", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Close waits for the client to leave, which waits for it to answer
	// the close: read meanwhile.
	closed := make(chan error, 1)
	go func() { closed <- api.m.Close(ctx) }()
	compatUntil(t, c, "exit")
	wantClose(t, c, websocket.StatusGoingAway, core.CloseReasonShutdown)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// Refused from now on, with the same code.
	late, _, err := dialCompat(t, api, "/ws/claude/down", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantClose(t, late, websocket.StatusGoingAway, core.CloseReasonShutdown)
}

// After a durable stop (Detach), a client that comes is told to reconnect
// to the next server: 1012.
func TestCompatDetached(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "on")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := api.m.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	c, _, err := dialCompat(t, api, "/ws/claude/on", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantClose(t, c, websocket.StatusServiceRestart, core.CloseReasonRestart)
}
