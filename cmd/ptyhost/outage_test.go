package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// tcpProxy forwards a local port to a server; Stop cuts every connection
// and refuses new ones, as a database outage does, and Start serves again
// on the same port.
type tcpProxy struct {
	t    *testing.T
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

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: "127.0.0.1:0", target: target}
	p.Start()
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.Stop)
	return p
}

func (p *tcpProxy) Start() {
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

// retarget forwards the connections the proxy accepts from now on to the
// server at serverURL, such as a new server after a restart.
func (p *tcpProxy) retarget(t *testing.T, serverURL string) {
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
func (p *tcpProxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung == nil {
		p.hung = make(chan struct{})
	}
}

// Resume passes bytes and connections on again after Hang.
func (p *tcpProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
}

// passing returns once the proxy is not hung.
func (p *tcpProxy) passing() {
	p.mu.Lock()
	hung := p.hung
	p.mu.Unlock()
	if hung != nil {
		<-hung
	}
}

// pipe copies from src to dst, holding what it read while the proxy is
// hung, and closes dst at src's end.
func (p *tcpProxy) pipe(dst, src net.Conn) {
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

func (p *tcpProxy) Stop() {
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

// postgresSchemaDSN returns the test PostgreSQL's DSN, reached through a
// proxy, with a schema of the test's own (dropped at its end).
func postgresSchemaDSN(t *testing.T) (string, *tcpProxy) {
	t.Helper()
	base := os.Getenv("PTYHOST_TEST_POSTGRES_DSN")
	if base == "" {
		msg := "PTYHOST_TEST_POSTGRES_DSN not set: run scripts/services/postgres.sh start (make test does)"
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "ptyhost_outage_" + hex.EncodeToString(b[:])
	admin, err := gormstore.Open(t.Context(), base, gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Gorm().Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Gorm().Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String(), proxy
}

// startServerWith runs the ptyhost binary with extra flags.
func startServerWith(t *testing.T, args ...string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, e2etest.Options{Args: args})
}

// During a PostgreSQL outage the server answers creates with 503, starts
// nothing, and says so in /healthz; live sessions go on; when the database
// is back, so is everything.
func TestPostgresOutage(t *testing.T) {
	dsn, proxy := postgresSchemaDSN(t)
	srv := startServerWith(t, "--db", dsn)
	if code, body := srv.Request(t, "GET", "/healthz", nil); code != 200 || body["store"] != "ok" {
		t.Fatalf("healthz: %d %v", code, body)
	}
	create := func(id string) (int, map[string]any) {
		return srv.Request(t, "POST", "/api/v1/sessions", fmt.Sprintf(`{"id":%q,"environment_id":"host","command":["sleep","3600"]}`, id))
	}
	if code, body := create("before"); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}

	proxy.Stop()
	e2etest.Eventually(t, 15*time.Second, "healthz to report the database down", func() bool {
		code, body := srv.Request(t, "GET", "/healthz", nil)
		return code == 503 && body["status"] == "degraded" && body["store"] == "unavailable"
	}, nil)
	code, body := create("during")
	if msg, _ := body["error"].(string); code != 503 || !strings.Contains(msg, "database is unavailable") {
		t.Errorf("create during the outage: %d %v; want 503 saying the database is unavailable", code, body)
	}
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/before", nil); code != 200 || body["status"] != "ACTIVE" {
		t.Errorf("the live session during the outage: %d %v", code, body)
	}

	proxy.Start()
	e2etest.Eventually(t, 15*time.Second, "healthz to recover", func() bool {
		code, body := srv.Request(t, "GET", "/healthz", nil)
		return code == 200 && body["store"] == "ok"
	}, nil)
	// Nothing of the refused create was left behind: not its record, and
	// not its id.
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/during", nil); code != 404 {
		t.Errorf("the refused session after the outage: %d %v, want 404", code, body)
	}
	if code, body := create("during"); code != 201 {
		t.Errorf("create after the outage: %d %v", code, body)
	}
	code, body = srv.Request(t, "GET", "/api/v1/sessions?status=ACTIVE", nil)
	list, ok := body["sessions"].([]any)
	if code != 200 || !ok {
		t.Fatalf("list after the outage: %d %v", code, body)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	if fmt.Sprint(ids) != "[before during]" {
		t.Errorf("ACTIVE sessions after the outage: %v, want before and during", ids)
	}
}
