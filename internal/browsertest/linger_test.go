package browsertest

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestReconnectToExitedSession: a page whose connection drops while the
// program prints its last words and exits, with the server up all along,
// shows those words when it reconnects, then the exit: the session
// lingers in the server's memory, and its attach gives the bytes from the
// page's offset and the exit (docs/protocol.md). The page read the
// session's record first, found it ended and showed the exit alone.
func TestReconnectToExitedSession(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo started; read x; echo last-$((6*7)); exit 4"}})
	front := newCutProxy(t, srv.URL)
	p := newTab(t, "reconnect-exited")
	// While the proxy refuses, the page's reconnects fail, and Chromium
	// logs each.
	p.expect(`^log network error: WebSocket connection to '[^']*' failed`, `^log network error: Failed to load resource`)
	p.navigate(front.url + "/?" + testHook + "&renderer=dom#/s/" + id)
	p.waitAttached(id)
	p.waitLine("started")

	front.setDown(true)
	p.waitFor("the page to notice the drop", `document.querySelector("#conn-state").dataset.state === "reconnecting"`,
		`document.querySelector("#conn-state").dataset.state`)
	// Another client lets the program go on, to its end, while the page
	// cannot reach the server.
	srv.Attach(t, id).Send("\r")
	eventually(t, "the session to end", func() bool {
		return srv.Session(t, id)["status"] == "TERMINATED"
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	front.setDown(false)

	p.waitFor("the exit banner", `(() => { const b = document.querySelector("#exit-banner"); return b.checkVisibility() && /exited with code 4\b/.test(b.textContent); })()`,
		`[document.querySelector("#exit-banner").textContent, document.querySelector("#conn-state").dataset.state]`)
	p.waitLine("last-42")
	if got := eval[float64](p, `window.ptyhost.resets`); got != 1 {
		t.Errorf("the page started its terminal afresh %v times, want once (the first hello): it did not resume at its offset", got)
	}
}

// cutProxy forwards TCP connections to a server; while down, it cuts
// those it forwards and closes every new one at once, as a network that
// fails does, while the server behind it runs on.
type cutProxy struct {
	url string

	// mu protects the following.
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

// newCutProxy starts a proxy to the server at serverURL; the test's
// cleanup stops it.
func newCutProxy(t testing.TB, serverURL string) *cutProxy {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutProxy{url: "http://" + l.Addr().String(), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		c.setDown(true)
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.forward(in, u.Host)
			}()
		}
	}()
	return c
}

// forward copies between in and a new connection to host until either
// ends or the proxy goes down.
func (c *cutProxy) forward(in net.Conn, host string) {
	defer in.Close()
	out, err := net.Dial("tcp", host)
	if err != nil {
		return
	}
	defer out.Close()
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return
	}
	c.conns[in], c.conns[out] = true, true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.conns, in)
		delete(c.conns, out)
		c.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
}

// setDown cuts every connection and refuses new ones (true), or lets
// them through again (false).
func (c *cutProxy) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
	if down {
		for conn := range c.conns {
			conn.Close()
		}
	}
}
