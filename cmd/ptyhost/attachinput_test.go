package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// notReadingServer serves an attach whose server sends output every 20 ms
// (so that the connection never looks stalled) and, unless reads, never
// reads what the client sends.
func notReadingServer(t *testing.T, reads bool) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/attach") {
			writeJSON(w, http.StatusOK, `{"id": "s1", "environment_id": "host", "status": "ACTIVE", "cols": 80, "rows": 24}`)
			return
		}
		c := acceptWithHello(w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if reads {
			go func() {
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			if c.Write(ctx, websocket.MessageBinary, []byte(".")) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return srv
}

// acceptWithHello accepts r's attach WebSocket and sends the hello of a
// session s1 of 80x24; nil when either fails. The caller closes it.
func acceptWithHello(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsproto.Subprotocol}})
	if err != nil {
		return nil
	}
	if c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":0}`)) != nil {
		c.CloseNow()
		return nil
	}
	return c
}

// pasteThenDetach attaches to srv with in fed a 64 MiB paste and then the
// detach key, and returns how attach ended, failing if it did not end
// within limit.
func pasteThenDetach(t *testing.T, srv *httptest.Server, opts attachOptions, limit time.Duration) (res attachResult, stderr string, err error) {
	t.Helper()
	c, err := newClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() {
		chunk := strings.Repeat("x", 1<<20)
		for range 64 {
			if _, err := io.WriteString(pw, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, "\x1d")
	}()
	var out, errOut syncBuffer
	type result struct {
		res attachResult
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		res, err := attach(ctx, c, stdio{in: pr, out: &out, err: &errOut}, opts)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, errOut.String(), r.err
	case <-time.After(limit):
		cancel() // what only a signal from elsewhere could do
		<-done
		t.Fatalf("attach did not end within %v of a paste and the detach key; stderr %q", limit, errOut.String())
		return attachResult{}, "", nil
	}
}

// A server that keeps sending output but takes nothing typed: the paste
// fills what the connection holds and the input's queue, and the detach
// key behind it cannot be read. attach gives up on the connection once a
// send has waited inputStall, says why, and returns; it used to wait as
// long as the server kept the connection (only a signal from elsewhere
// ended it: in raw mode Ctrl-C is a byte for the session).
func TestAttachEndsWhenServerTakesNoInput(t *testing.T) {
	srv := notReadingServer(t, false)
	start := time.Now()
	res, stderr, err := pasteThenDetach(t, srv, attachOptions{id: "s1", detachKey: defaultDetachKey, inputStall: time.Second}, 20*time.Second)
	var ise inputStallError
	if !errors.As(err, &ise) {
		t.Fatalf("attach = %+v, %v (stderr %q); want the input stall's error", res, err, stderr)
	}
	if !strings.Contains(err.Error(), "the server took nothing typed for 1s") {
		t.Errorf("error %q does not say why", err)
	}
	t.Logf("ended after %v: %v", time.Since(start), err)
}

// The control: against a server that reads, the same paste goes and the
// detach key detaches.
func TestAttachPasteThenDetach(t *testing.T) {
	srv := notReadingServer(t, true)
	res, stderr, err := pasteThenDetach(t, srv, attachOptions{id: "s1", detachKey: defaultDetachKey, inputStall: time.Second}, 60*time.Second)
	if err != nil || res.end != endDetached {
		t.Fatalf("attach = %+v, %v (stderr %q); want a detach", res, err, stderr)
	}
}

// The input's queue: put waits while it is full and goes on when take
// makes room; take returns the oldest bytes first; settle waits for what
// was taken to be sent, or gives up after its time; wakeNext passes the
// wake-up on when bytes are left.
func TestInputQueue(t *testing.T) {
	in := newInput()
	ctx := t.Context()
	big := strings.Repeat("a", maxQueuedInput) + "bc"
	put := make(chan bool, 1)
	go func() { put <- in.put(ctx, []byte(big)) }()
	select {
	case <-put:
		t.Fatal("put of more than the queue holds returned without a take")
	case <-time.After(50 * time.Millisecond):
	}
	if p := in.take(4); string(p) != "aaaa" {
		t.Fatalf("take = %q", p)
	}
	in.sent()
	if !<-put {
		t.Fatal("put gave up")
	}
	var got strings.Builder
	got.WriteString("aaaa")
	for {
		p := in.take(64 << 10)
		if p == nil {
			break
		}
		got.Write(p)
		in.sent()
	}
	if got.String() != big {
		t.Fatalf("took %d bytes ending %q, want the %d put", got.Len(), got.String()[max(0, got.Len()-4):], len(big))
	}
	if !in.idle() {
		t.Fatal("not idle with nothing queued or being sent")
	}

	// settle: returns once what was taken is sent; gives up after within
	// when it is not.
	in.put(ctx, []byte("xy"))
	if p := in.take(1); string(p) != "x" {
		t.Fatalf("take = %q", p)
	}
	settled := make(chan struct{})
	go func() { in.settle(ctx, 5*time.Second); close(settled) }()
	in.sent() // before or after settle begins: "y" is still queued either way
	select {
	case <-settled:
		t.Fatal("settle returned with a byte still queued")
	case <-time.After(20 * time.Millisecond):
	}
	if p := in.take(1); string(p) != "y" {
		t.Fatalf("take = %q", p)
	}
	in.sent()
	select {
	case <-settled:
	case <-time.After(5 * time.Second):
		t.Fatal("settle did not return once everything was sent")
	}
	in.put(ctx, []byte("z"))
	in.take(1) // never sent
	start := time.Now()
	in.settle(ctx, 100*time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("settle on a send that never ends took %v, want its 100ms", d)
	}
	in.sent()

	// wakeNext: a sender that ends leaves the wake-up for the next.
	for len(in.ready) > 0 {
		<-in.ready
	}
	in.put(ctx, []byte("q"))
	<-in.ready // taken by a sender that then ends
	in.wakeNext()
	select {
	case <-in.ready:
	default:
		t.Fatal("wakeNext left no wake-up with a byte queued")
	}
	in.drop()
	in.wakeNext()
	if len(in.ready) != 0 {
		t.Fatal("wakeNext woke with nothing queued")
	}
}
