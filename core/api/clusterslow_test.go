package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// attachThroughA attaches a raw WebSocket client, dialled with d, to s1
// (on b) through a, and waits until b has it. The connection closes with
// the test.
func attachThroughA(t *testing.T, c *twoNodes, d *net.Dialer) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := d.Dial("tcp", strings.TrimPrefix(c.aSrv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET /api/v1/sessions/s1/attach HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ptyhost.v1\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 16)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through a: %v %v", res, err)
	}
	eventually(t, "the client attached on b", func() bool {
		rec, err := c.b.m.GetSession(context.Background(), "s1")
		return err == nil && rec.ActiveConnections == 1
	})
	return conn, br
}

// Node to node traffic never goes through $HTTP_PROXY, which would get
// the cluster secret and every forwarded byte.
func TestClusterTransportHasNoProxy(t *testing.T) {
	c := newCluster(ClusterOptions{NodeName: "a", Secret: testClusterSecret}, time.Second)
	if c.transport.Proxy != nil || c.starts.Proxy != nil {
		t.Error("the cluster's transports take a proxy from the environment")
	}
}

// A client attached through another node that stops reading is
// disconnected by the node it came through within its write timeout, as
// on a direct attach, and the owner's attachment ends with it: the
// proxy's copy used to stay blocked writing to the client for good.
func TestProxiedClientThatStopsReading(t *testing.T) {
	c := newTwoNodes(t, Options{WriteTimeout: 300 * time.Millisecond})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	attachThroughA(t, c, &d)
	// From here on the client reads nothing, and the program writes a
	// lot. b's own write timeout is 30 s: only a's can end it sooner.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for ctx.Err() == nil {
			if _, err := c.pty.WriteOutput(chunk); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := c.b.m.GetSession(context.Background(), "s1")
		if err == nil && rec.ActiveConnections == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("10 s on, the client that reads nothing is still attached through a")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// When the owner's stream ends (here: its node is lost), the first node
// half-closes the client's connection after the close frame and gives it
// closeGrace to answer, rather than closing it at once: the client's
// close answer meets an open socket. (Wrapping the client's connection to
// bound its writes once hid its CloseWrite from the proxy.)
func TestProxiedCloseHandshake(t *testing.T) {
	if _, ok := boundWrites(&net.TCPConn{}, time.Second).(interface{ CloseWrite() error }); !ok {
		t.Error("boundWrites hides the connection's CloseWrite")
	}
	c := newTwoNodes(t, Options{WriteTimeout: 5 * time.Second})
	conn, br := attachThroughA(t, c, &net.Dialer{})
	c.setBHealthy(false) // a's watcher loses the owner: node_lost
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(br)
	if err != nil || !bytes.HasSuffix(all, nodeLostFrame) {
		t.Fatalf("the client read %d bytes, then %v; want the node_lost close frame, then the end", len(all), err)
	}
	if _, err := conn.Write([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}); err != nil { // masked close 1000
		t.Fatalf("writing the close answer: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	var soErr int
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Control(func(fd uintptr) { soErr, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR) })
	if soErr != 0 {
		t.Errorf("the client's close answer met %v: the connection was closed at once, not half-closed", syscall.Errno(soErr))
	}
}
