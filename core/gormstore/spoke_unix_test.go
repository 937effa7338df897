//go:build unix

package gormstore

import (
	"io"
	"net"
	"testing"
	"time"
)

// serverSpoke sees what a server sent unasked, and the end of the stream,
// without reading it, and nothing on a quiet connection.
func TestServerSpoke(t *testing.T) {
	client, server := tcpPair(t)
	if serverSpoke(client) {
		t.Error("a quiet connection: spoke")
	}
	if _, err := server.Write([]byte("E")); err != nil {
		t.Fatal(err)
	}
	waitSpoke(t, client, "after the server wrote")
	client.SetReadDeadline(time.Now().Add(time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(client, b); err != nil || b[0] != 'E' {
		t.Fatalf("the byte was not left to read: %q, %v", b, err)
	}
	if serverSpoke(client) {
		t.Error("after the byte was read: spoke")
	}
	server.Close()
	waitSpoke(t, client, "after the server closed")
}

func waitSpoke(t *testing.T, c net.Conn, when string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !serverSpoke(c); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: serverSpoke stayed false", when)
		}
	}
}

// serverSpoke does not wait behind a read in progress on the connection
// (the driver's background reader can leave one blocked): it looks at the
// socket without the descriptor's read lock. (Found by a review: it
// waited until the server spoke.)
func TestServerSpokeBesideABlockedRead(t *testing.T) {
	client, server := tcpPair(t)
	read := make(chan struct{})
	go func() {
		defer close(read)
		b := make([]byte, 8192)
		client.Read(b) // blocked until the server writes
	}()
	time.Sleep(50 * time.Millisecond)
	done := make(chan bool, 1)
	go func() { done <- serverSpoke(client) }()
	select {
	case spoke := <-done:
		if spoke {
			t.Error("a quiet connection with a read in progress: spoke")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("serverSpoke still waiting after 2 s behind a read in progress")
	}
	server.Write([]byte("E"))
	<-read
}

// tcpPair returns the two ends of a TCP connection on loopback, closed at
// the test's end.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
