package e2etest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards a local port to a server, for tests of what a network
// does: Stop cuts every connection and refuses new ones, as an outage
// does, and Start serves again on the same port; Hang holds everything
// until Resume.
type Proxy struct {
	t    testing.TB
	addr string // the proxy's

	// mu protects the following; retarget changes target while the
	// proxy serves.
	mu     sync.Mutex
	target string
	ln     net.Listener
	conns  []net.Conn
	// hung, while not nil, holds every byte and every new connection
	// until it is closed (Resume, Stop).
	hung chan struct{}
}

// NewProxy starts a proxy to target (HOST:PORT); the test's cleanup
// stops it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.Start()
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.Stop)
	return p
}

// Start serves on the proxy's port (again, after Stop).
func (p *Proxy) Start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c) // a Stop while it hangs closes it
			p.mu.Unlock()
			p.passing()
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // stopped while it dialled: part of the cut
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
}

// Retarget forwards the connections the proxy accepts from now on to the
// server at serverURL, such as a new server after a restart.
func (p *Proxy) Retarget(t testing.TB, serverURL string) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = u.Host
}

// Hang stops passing bytes on, either way, and holds new connections
// unanswered, as a database that hangs (a stalled machine, a network that
// drops packets) does: nothing fails, everything waits. Resume or Stop
// ends it.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung == nil {
		p.hung = make(chan struct{})
	}
}

// Resume passes bytes and connections on again after Hang.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
}

// passing returns once the proxy is not hung.
func (p *Proxy) passing() {
	p.mu.Lock()
	hung := p.hung
	p.mu.Unlock()
	if hung != nil {
		<-hung
	}
}

// pipe copies from src to dst, holding what it read while the proxy is
// hung, and closes dst at src's end.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.passing()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stop cuts every connection through the proxy and closes its port.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Addr is the proxy's address, HOST:PORT.
func (p *Proxy) Addr() string { return p.addr }
