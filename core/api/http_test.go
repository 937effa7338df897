package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

type apiHarness struct {
	*harness
	srv *httptest.Server
}

func newAPI(t *testing.T, hopts Options, mod func(*core.Options)) *apiHarness {
	t.Helper()
	h := newHarness(t, mod)
	srv := httptest.NewServer(NewHandler(h.m, hopts))
	t.Cleanup(srv.Close)
	return &apiHarness{harness: h, srv: srv}
}

func (a *apiHarness) do(t *testing.T, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch method {
	case "POST", "PUT", "PATCH":
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 { // an empty value removes the header
		switch {
		case hdr[i] == "Host":
			req.Host = hdr[i+1]
		case hdr[i+1] == "":
			req.Header.Del(hdr[i])
		default:
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, path, b)
		}
	}
	return resp.StatusCode, out
}

func TestRESTSessions(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"s1","environment_id":"fake","worktree_path":"/tmp","command":["sh"],"env":{"A":"b"},"cols":100,"rows":30}`)
	if code != 201 || body["id"] != "s1" || body["status"] != "ACTIVE" || body["cols"] != 100.0 {
		t.Fatalf("create: %d %v", code, body)
	}
	p := api.env.Last(t)
	if p.Req.Dir != "/tmp" || p.Req.Command[0] != "sh" || p.Req.Env["A"] != "b" {
		t.Errorf("spawn request = %+v", p.Req)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/s1", ""); code != 200 || body["status"] != "ACTIVE" {
		t.Errorf("get: %d %v", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions", ""); code != 200 || len(body["sessions"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, body)
	}
	// No answer is kept by a cache, nor read as other than JSON.
	res, err := http.Get(api.srv.URL + "/api/v1/sessions")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cc, nosniff := res.Header.Get("Cache-Control"), res.Header.Get("X-Content-Type-Options"); cc != "no-store" || nosniff != "nosniff" {
		t.Errorf("list's Cache-Control %q, X-Content-Type-Options %q; want no-store, nosniff", cc, nosniff)
	}
	for range 2 { // idempotent
		if code, _ := api.do(t, "DELETE", "/api/v1/sessions/s1", ""); code != 204 {
			t.Errorf("delete: %d", code)
		}
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/s1", ""); code != 200 || body["status"] != "TERMINATED" {
		t.Errorf("get after delete: %d %v", code, body)
	}
}

func TestRESTErrors(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "taken")
	api.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		switch req.SessionID {
		case "adapter-fails":
			return nil, errors.New("the daemon said no")
		case "unavailable":
			return nil, shared.ErrUnavailable
		case "bad-dir":
			return nil, shared.ErrInvalidArgument
		}
		return fakeenv.NewPTY(req), nil
	})
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed json", "POST", "/api/v1/sessions", `{"environment_id":`, 400},
		{"empty body", "POST", "/api/v1/sessions", ``, 400},
		{"not an object", "POST", "/api/v1/sessions", `[1,2]`, 400},
		{"unknown field", "POST", "/api/v1/sessions", `{"environment_id":"fake","colour":"red"}`, 400},
		{"trailing data", "POST", "/api/v1/sessions", `{"environment_id":"fake"} {}`, 400},
		{"string cols", "POST", "/api/v1/sessions", `{"environment_id":"fake","cols":"80"}`, 400},
		{"zero size", "POST", "/api/v1/sessions", `{"environment_id":"fake","cols":0,"rows":0}`, 400},
		{"huge size", "POST", "/api/v1/sessions", `{"environment_id":"fake","cols":5000,"rows":5000}`, 400},
		{"bad id", "POST", "/api/v1/sessions", `{"id":"../etc","environment_id":"fake"}`, 400},
		{"unknown environment", "POST", "/api/v1/sessions", `{"environment_id":"nope"}`, 404},
		{"duplicate id", "POST", "/api/v1/sessions", `{"id":"taken","environment_id":"fake"}`, 409},
		{"adapter failure", "POST", "/api/v1/sessions", `{"id":"adapter-fails","environment_id":"fake"}`, 502},
		{"environment unavailable", "POST", "/api/v1/sessions", `{"id":"unavailable","environment_id":"fake"}`, 503},
		{"bad working dir", "POST", "/api/v1/sessions", `{"id":"bad-dir","environment_id":"fake"}`, 400},
		{"unknown session", "GET", "/api/v1/sessions/nope", ``, 404},
		{"unknown endpoint", "GET", "/api/v1/nothing", ``, 404},
		{"wrong method", "PUT", "/api/v1/sessions/taken", ``, 405},
		{"oversized body", "POST", "/api/v1/sessions", `{"environment_id":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
		{"oversized environment", "POST", "/api/v1/environments", `{"id":"big","type":"FAKE","config":{"a":"` + strings.Repeat("x", 1<<20) + `"}}`, 413},
		{"oversized update", "PUT", "/api/v1/environments/fake", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, tt.method, tt.path, tt.body)
			if code != tt.want {
				t.Fatalf("status %d, want %d (%v)", code, tt.want, body)
			}
			if code != 405 {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("no error message: %v", body)
				}
			}
		})
	}
	// None of it hurt the live session.
	if code, body := api.do(t, "GET", "/api/v1/sessions/taken", ""); code != 200 || body["status"] != "ACTIVE" {
		t.Errorf("taken: %d %v", code, body)
	}
}

func TestRESTEnvironments(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.env.SetValidate(func(cfg json.RawMessage) error {
		if bytes.Contains(cfg, []byte("bogus")) {
			return errors.New(`unknown field "bogus": ` + shared.ErrInvalidConfig.Error())
		}
		return nil
	})
	code, body := api.do(t, "POST", "/api/v1/environments", `{"id":"e1","type":"FAKE","config":{"shell":"/bin/sh"}}`)
	if code != 201 || body["name"] != "e1" || body["type"] != "FAKE" {
		t.Fatalf("create: %d %v", code, body)
	}
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"id":"e1","type":"FAKE"}`, 409},
		{`{"id":"e2","type":"NOPE"}`, 400},
		{`{"id":"e2"}`, 400},
		{`{"id":"e2","type":"FAKE","config":[1]}`, 400},
		{`{"id":"e2","type":"FAKE","config":"x"}`, 400},
		{`{"id":"e 2","type":"FAKE"}`, 400},
	} {
		if code, body := api.do(t, "POST", "/api/v1/environments", tt.body); code != tt.want {
			t.Errorf("%s: %d %v, want %d", tt.body, code, body, tt.want)
		}
	}
	api.env.SetValidate(func(json.RawMessage) error { return shared.ErrInvalidConfig })
	if code, body := api.do(t, "POST", "/api/v1/environments", `{"id":"e3","type":"FAKE","config":{"bogus":1}}`); code != 400 {
		t.Errorf("plugin-rejected config: %d %v", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/environments", ""); code != 200 || len(body["environments"].([]any)) != 2 {
		t.Errorf("list: %d %v", code, body)
	}
	if code, _ := api.do(t, "GET", "/api/v1/environments/e1", ""); code != 200 {
		t.Errorf("get: %d", code)
	}
	api.create(t, "busy") // in "fake"
	if code, _ := api.do(t, "DELETE", "/api/v1/environments/fake", ""); code != 409 {
		t.Errorf("delete in use: %d", code)
	}
	if code, _ := api.do(t, "DELETE", "/api/v1/environments/e1", ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := api.do(t, "DELETE", "/api/v1/environments/e1", ""); code != 404 {
		t.Errorf("delete again: %d", code)
	}
	if code, _ := api.do(t, "GET", "/api/v1/environments/e1", ""); code != 404 {
		t.Errorf("get deleted: %d", code)
	}
}

func TestToken(t *testing.T) {
	api := newAPI(t, Options{Token: "s3cret"}, nil)
	for _, tt := range []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"none", "/api/v1/sessions", nil, 401},
		{"wrong", "/api/v1/sessions", []string{"Authorization", "Bearer nope"}, 401},
		{"not bearer", "/api/v1/sessions", []string{"Authorization", "Basic czNjcmV0"}, 401},
		{"bare token", "/api/v1/sessions", []string{"Authorization", "s3cret"}, 401},
		{"bare token beside the query", "/api/v1/sessions?access_token=s3cret", []string{"Authorization", "s3cret"}, 401},
		{"scheme only", "/api/v1/sessions", []string{"Authorization", "Bearer"}, 401},
		{"token with a suffix", "/api/v1/sessions", []string{"Authorization", "Bearer s3cretX"}, 401},
		{"header", "/api/v1/sessions", []string{"Authorization", "Bearer s3cret"}, 200},
		{"lower-case scheme", "/api/v1/sessions", []string{"Authorization", "bearer s3cret"}, 200},
		{"upper-case scheme", "/api/v1/sessions", []string{"Authorization", "BEARER s3cret"}, 200},
		{"query", "/api/v1/sessions?access_token=s3cret", nil, 200},
		{"healthz needs none", "/healthz", nil, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, "GET", tt.path, "", tt.hdr...)
			if code != tt.want {
				t.Errorf("status %d %v, want %d", code, body, tt.want)
			}
			if msg, _ := body["error"].(string); code == 401 && (!strings.HasPrefix(msg, "unauthorized") || strings.Contains(msg, "s3cret")) {
				t.Errorf("401 message %q: want it to start with unauthorized and not to hold the token", msg)
			}
		})
	}
}

// wsClient dials the attach endpoint.
func dialAttach(t *testing.T, api *apiHarness, id string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(api.srv.URL, "http") + "/api/v1/sessions/" + id + "/attach"
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsproto.Subprotocol}, HTTPHeader: hdr})
	if err == nil {
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

type wsMsg struct {
	binary bool
	data   []byte
	ctrl   map[string]any
}

func readMsg(t *testing.T, c *websocket.Conn) (wsMsg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	if typ == websocket.MessageBinary {
		return wsMsg{binary: true, data: b}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("server sent text that is not JSON: %q", b)
	}
	return wsMsg{ctrl: m}, nil
}

// readUntil reads messages, collecting binary output, until a control
// message of type typ arrives.
func readUntil(t *testing.T, c *websocket.Conn, typ string) ([]byte, map[string]any) {
	t.Helper()
	var out []byte
	for {
		m, err := readMsg(t, c)
		if err != nil {
			t.Fatalf("waiting for %q (after %d output bytes): %v", typ, len(out), err)
		}
		if m.binary {
			out = append(out, m.data...)
			continue
		}
		if m.ctrl["type"] == typ {
			return out, m.ctrl
		}
	}
}

// readOutput reads until n output bytes arrived.
func readOutput(t *testing.T, c *websocket.Conn, n int) []byte {
	t.Helper()
	var out []byte
	for len(out) < n {
		m, err := readMsg(t, c)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
		if m.binary {
			out = append(out, m.data...)
		} else if m.ctrl["type"] == "reset" {
			t.Fatalf("after %d of %d bytes: client was reset", len(out), n)
		}
	}
	return out
}

func TestAttachEndToEnd(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "w")
	p.Output(t, []byte("early output 🙂\r\n"))

	c1, resp, err := dialAttach(t, api, "w", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != wsproto.Subprotocol {
		t.Errorf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	m, _ := readMsg(t, c1)
	if m.ctrl["type"] != "hello" || m.ctrl["session_id"] != "w" || m.ctrl["cols"] != 80.0 || m.ctrl["offset"] != 0.0 {
		t.Fatalf("first message = %+v", m)
	}
	if got := readOutput(t, c1, 19); string(got) != "early output 🙂\r\n" {
		t.Errorf("replay = %q", got)
	}
	c2, _, err := dialAttach(t, api, "w", nil)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, c2, "hello")
	readOutput(t, c2, 19)

	// Both see live output; both can type.
	p.Output(t, []byte("live"))
	for _, c := range []*websocket.Conn{c1, c2} {
		if got := readOutput(t, c, 4); string(got) != "live" {
			t.Errorf("live = %q", got)
		}
	}
	for i, c := range []*websocket.Conn{c1, c2} {
		msg := []string{"ls\r", "pwd\r"}[i]
		if err := c.Write(t.Context(), websocket.MessageBinary, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := <-p.Input(); string(got) != msg {
			t.Errorf("input = %q", got)
		}
	}

	// Bad messages: each answered with an error, in the protocol's words
	// (no Go types), nothing else changes.
	for _, bad := range []struct {
		typ  websocket.MessageType
		data string
	}{
		{websocket.MessageText, `{"type":`},
		{websocket.MessageText, `"just a string"`},
		{websocket.MessageText, `[]`},
		{websocket.MessageText, `null`},
		{websocket.MessageText, `12`},
		{websocket.MessageText, `{"type":"dance"}`},
		{websocket.MessageText, `{"cols":10}`},
		{websocket.MessageText, `{"type":"resize","cols":0,"rows":0}`},
		{websocket.MessageText, `{"type":"resize","cols":5000,"rows":5000}`},
		{websocket.MessageText, `{"type":"resize","cols":"80","rows":24}`},
		{websocket.MessageText, `{"type":"resize","cols":80}`},
		{websocket.MessageBinary, strings.Repeat("x", wsproto.MaxInputFrame+1)},
		{websocket.MessageText, strings.Repeat(" ", wsproto.MaxInputFrame+1)},
	} {
		if err := c1.Write(t.Context(), bad.typ, []byte(bad.data)); err != nil {
			t.Fatal(err)
		}
		_, msg := readUntil(t, c1, "error")
		s, _ := msg["message"].(string)
		if s == "" {
			t.Errorf("%.40q: empty error message", bad.data)
		}
		if strings.Contains(s, "Go ") || strings.Contains(s, "struct") {
			t.Errorf("%.40q: %q shows Go's types", bad.data, s)
		}
		if bad.data == "[]" && s != "control message must be a JSON object, not an array" {
			t.Errorf("[]: %q, want control message must be a JSON object, not an array", s)
		}
	}
	select {
	case got := <-p.Input():
		t.Errorf("oversized input partly written: %d bytes", len(got))
	default:
	}

	// Resize: both clients told, the PTY resized.
	if err := c2.Write(t.Context(), websocket.MessageText, []byte(`{"type":"resize","cols":120,"rows":40}`)); err != nil {
		t.Fatal(err)
	}
	if got := <-p.Resizes(); got != (shared.Size{Cols: 120, Rows: 40}) {
		t.Errorf("pty resized to %+v", got)
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		if _, msg := readUntil(t, c, "resize"); msg["cols"] != 120.0 || msg["rows"] != 40.0 {
			t.Errorf("resize message = %v", msg)
		}
	}

	// The session still works after all that.
	p.Output(t, []byte("still here"))
	if got := readOutput(t, c2, 10); string(got) != "still here" {
		t.Errorf("after bad input: %q", got)
	}

	// Exit: output first, then the exit message, then a normal close.
	p.Output(t, []byte("bye"))
	p.End(shared.ExitStatus{Code: 7})
	out, msg := readUntil(t, c1, "exit")
	if !strings.HasSuffix(string(out), "bye") || msg["code"] != 7.0 {
		t.Errorf("before exit %q; exit %v", out, msg)
	}
	_, err = readMsg(t, c1)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("close = %v", err)
	}
}

func TestAttachErrors(t *testing.T) {
	api := newAPI(t, Options{Token: "tok"}, func(o *core.Options) { o.Linger = time.Millisecond })
	auth := http.Header{"Authorization": {"Bearer tok"}}
	if _, resp, err := dialAttach(t, api, "nope", auth); err == nil || resp.StatusCode != 404 {
		t.Errorf("unknown session: %v %v", err, resp)
	}
	api.create(t, "t")
	if _, resp, err := dialAttach(t, api, "t", nil); err == nil || resp.StatusCode != 401 {
		t.Errorf("no token: %v %v", err, resp)
	}
	bad := http.Header{"Authorization": {"Bearer tok"}, "Origin": {"https://evil.example"}}
	if _, resp, err := dialAttach(t, api, "t", bad); err == nil || resp.StatusCode != 403 {
		t.Errorf("foreign origin: %v %v", err, resp)
	}
	// Refused upgrades never counted as clients.
	if rec, _ := api.m.GetSession(t.Context(), "t"); rec.ActiveConnections != 0 || rec.Status != core.StatusActive {
		t.Errorf("after refused attaches: %+v", rec)
	}
	// An ended session past its linger is 410 with the exit code.
	p := api.env.Last(t)
	p.End(shared.ExitStatus{Code: 42})
	eventually(t, "linger to end", func() bool {
		a, err := api.m.Attach(context.Background(), "t")
		if err == nil {
			a.Close()
		}
		return errors.Is(err, core.ErrSessionNotFound)
	})
	req, _ := http.NewRequest("GET", api.srv.URL+"/api/v1/sessions/t/attach", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 410 || body["exit_code"] != 42.0 {
		t.Errorf("ended session: %d %v", resp.StatusCode, body)
	}
}

func TestDestroyClosesWebSockets(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "gone")
	c, _, err := dialAttach(t, api, "gone", nil)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "hello")
	if code, _ := api.do(t, "DELETE", "/api/v1/sessions/gone", ""); code != 204 {
		t.Fatal(code)
	}
	_, err = readMsg(t, c)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 || ce.Reason != "Session destroyed" {
		t.Errorf("close = %v", err)
	}
}

func TestStalledClientDoesNotSlowAnother(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.ScrollbackBytes = 64 << 10 })
	_, p := api.create(t, "st")
	stalled, _, err := dialAttach(t, api, "st", nil) // not read until the end
	if err != nil {
		t.Fatal(err)
	}
	live, _, err := dialAttach(t, api, "st", nil)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, live, "hello")
	// The live client gets every byte while the other reads nothing.
	floodInStep(t, p, live)
	// The stalled client, once it reads, is told it lost output.
	_, msg := readUntil(t, stalled, "reset")
	if off, _ := msg["offset"].(float64); off <= 0 {
		t.Errorf("reset = %v", msg)
	}
}

// floodInStep writes 16 MiB of output through p, 32 KiB at a time, and
// reads each chunk back whole on live before the next: far beyond the
// socket buffers and the ring, so that a client that reads nothing falls
// behind while live must get every byte.
func floodInStep(t *testing.T, p *fakeenv.PTY, live *websocket.Conn) {
	t.Helper()
	chunk := bytes.Repeat([]byte("0123456789abcde\n"), 2<<10)
	for i := range 512 {
		p.Output(t, chunk)
		if got := readOutput(t, live, len(chunk)); !bytes.Equal(got, chunk) {
			t.Fatalf("chunk %d differs", i)
		}
	}
}

// A lone client that reads nothing holds the session's output, by design
// (a terminal that cannot keep up slows the program), but not the
// session's reader, which would write its output itself while it keeps up
// (core.Attachment.Direct): a second client that attaches gets live output
// at once, not after the stalled one's write times out.
func TestStalledLoneClientDoesNotHoldTheReader(t *testing.T) {
	api := newAPI(t, Options{WriteTimeout: time.Minute}, func(o *core.Options) { o.ScrollbackBytes = 64 << 10 })
	_, p := api.create(t, "lone")
	stalled, _, err := dialAttach(t, api, "lone", nil) // never read
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	// The program writes echo-sized pieces until the session stops
	// taking them: far beyond both sockets' buffers.
	var written atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		piece := bytes.Repeat([]byte("0123456789abcde\n"), 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := p.WriteOutput(piece); err != nil {
				return
			}
			written.Add(int64(len(piece)))
		}
	}()
	// Stalled: no progress for a while.
	last := int64(-1)
	for n := written.Load(); n != last; n = written.Load() {
		last = n
		time.Sleep(500 * time.Millisecond)
	}
	live, _, err := dialAttach(t, api, "lone", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.CloseNow()
	go func() {
		for {
			if _, _, err := live.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for written.Load() < last+1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the program wrote %d bytes more in 10 s with a live client attached; want the session's reader going again", written.Load()-last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A create whose plugin never answers the spawn is 504 at the spawn
// timeout, not held until the client gives up, and the session is
// recorded ERROR with the reason.
func TestRESTSpawnTimeout(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.SpawnTimeout = 200 * time.Millisecond })
	api.env.SetSpawn(hangingSpawn(t, nil))
	type result struct {
		code int
		body map[string]any
	}
	done := make(chan result, 1)
	go func() {
		code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"hung","environment_id":"fake"}`)
		done <- result{code, body}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the create was still held 10 s after the spawn timeout")
	}
	if msg, _ := r.body["error"].(string); r.code != http.StatusGatewayTimeout || !strings.Contains(msg, "did not answer in time") {
		t.Errorf("create: %d %v, want 504 saying the plugin did not answer in time", r.code, r.body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/hung", ""); code != 200 || body["status"] != "ERROR" || !strings.Contains(body["status_reason"].(string), "within 200ms") {
		t.Errorf("get: %d %v, want ERROR with the reason", code, body)
	}
}

// A DELETE of a session whose spawn has not answered cancels the spawn:
// the session reads TERMINATED once the 204 is in, and the create answers
// at once, 404.
func TestRESTDeleteWhileStarting(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	spawning := make(chan struct{})
	api.env.SetSpawn(hangingSpawn(t, spawning))
	done := make(chan int, 1)
	go func() {
		code, _ := api.do(t, "POST", "/api/v1/sessions", `{"id":"hung","environment_id":"fake"}`)
		done <- code
	}()
	<-spawning
	if code, _ := api.do(t, "DELETE", "/api/v1/sessions/hung", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/hung", ""); code != 200 || body["status"] != "TERMINATED" {
		t.Errorf("get after delete: %d %v, want TERMINATED", code, body)
	}
	select {
	case code := <-done:
		if code != http.StatusNotFound {
			t.Errorf("create of the session destroyed while starting: %d, want 404", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the create was still held 5 s after the DELETE")
	}
}

// hangingSpawn returns a spawn that never answers: it ends with its
// context, as the gRPC client's does for a plugin that never answers, or
// with the test (lest a create the server failed to bound hold the test
// server's Close). It closes spawning, when not nil, once called.
func hangingSpawn(t *testing.T, spawning chan struct{}) func(context.Context, shared.SpawnRequest) (shared.PTY, error) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before the server's Close
	return func(ctx context.Context, _ shared.SpawnRequest) (shared.PTY, error) {
		if spawning != nil {
			close(spawning)
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-stop:
			return nil, errors.New("the test is over")
		}
	}
}
