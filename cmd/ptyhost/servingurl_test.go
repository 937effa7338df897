package main

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// The serving line shows a wildcard --listen as the operator gave it,
// with the port bound: Go reports a listener on 0.0.0.0 as [::], which
// read as IPv6 only (serve --listen 0.0.0.0:7420 printed
// http://[::]:7420). Another address shows as bound.
func TestServingURL(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, tt := range []struct {
		listen string
		bound  net.Addr
		want   string
	}{
		{"0.0.0.0:7420", tcp("::", 7420), "http://0.0.0.0:7420"},
		{"0.0.0.0:0", tcp("::", 41234), "http://0.0.0.0:41234"},
		{"0.0.0.0:7420", tcp("0.0.0.0", 7420), "http://0.0.0.0:7420"},
		{"[::]:7420", tcp("::", 7420), "http://[::]:7420"},
		{":7420", tcp("::", 7420), "http://[::]:7420"},
		{"127.0.0.1:0", tcp("127.0.0.1", 41234), "http://127.0.0.1:41234"},
		{"localhost:7420", tcp("127.0.0.1", 7420), "http://127.0.0.1:7420"},
		{"[::1]:7420", tcp("::1", 7420), "http://[::1]:7420"},
		{"192.0.2.1:7420", tcp("192.0.2.1", 7420), "http://192.0.2.1:7420"},
	} {
		if got := servingURL(tt.listen, tt.bound); got != tt.want {
			t.Errorf("servingURL(%q, %v) = %q, want %q", tt.listen, tt.bound, got, tt.want)
		}
	}
}

// serve --listen 0.0.0.0:0 (with the token it needs) says it serves on
// http://0.0.0.0:PORT, on stdout and in its log, and answers there.
func TestServeWildcardListenPrintsItsAddress(t *testing.T) {
	srv := e2etest.Start(t, e2etest.Options{
		Plugins: []string{}, LogLevel: "info",
		Args: []string{"--listen", "0.0.0.0:0", "--token", "0123456789abcdef-wildcard"},
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return run(ctx, args, stdio{in: strings.NewReader(""), out: stdout, err: stderr})
		},
	})
	if !regexp.MustCompile(`^http://0\.0\.0\.0:[1-9][0-9]*$`).MatchString(srv.URL) {
		t.Errorf("serving on %q; want http://0.0.0.0:PORT", srv.URL)
	}
	if want := `msg="ptyhost serving" url=` + srv.URL + " "; !strings.Contains(srv.Stderr(), want) {
		t.Errorf("the log does not say %q:\n%s", want, srv.Stderr())
	}
	if code, _ := srv.Request(t, "GET", "/api/v1/sessions", nil); code != 200 {
		t.Errorf("GET with the token at %s: %d", srv.URL, code)
	}
}

// listenNetwork listens on an IPv4 address with IPv4 alone: Go's "tcp"
// takes 0.0.0.0 for every address of both families.
func TestListenNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:7420":   "tcp4",
		"127.0.0.1:0":    "tcp4",
		"192.0.2.1:7420": "tcp4",
		"[::]:7420":      "tcp",
		"[::1]:7420":     "tcp",
		":7420":          "tcp",
		"localhost:7420": "tcp",
		"nonsense":       "tcp",
	} {
		if got := listenNetwork(addr); got != want {
			t.Errorf("listenNetwork(%q) = %q, want %q", addr, got, want)
		}
	}
}

// serve --listen 0.0.0.0:PORT serves IPv4 alone: [::1]:PORT refuses. It
// served IPv6 as well, which an operator who opened only IPv4 to the
// network would not expect (and a firewall for IPv4 alone would not
// cover).
func TestServeIPv4WildcardServesNoIPv6(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("this machine has no IPv6 loopback (%v): Go's \"tcp\" then listens on IPv4 alone too, and TestListenNetwork covers the choice", err)
		return
	}
	probe.Close()
	srv := e2etest.Start(t, e2etest.Options{
		Plugins: []string{},
		Args:    []string{"--listen", "0.0.0.0:0", "--token", "0123456789abcdef-ipv4only"},
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return run(ctx, args, stdio{in: strings.NewReader(""), out: stdout, err: stderr})
		},
	})
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatalf("serving URL %q: %v", srv.URL, err)
	}
	if c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", port)); err != nil {
		t.Errorf("127.0.0.1:%s: %v, want it served", port, err)
	} else {
		c.Close()
	}
	c, err := net.Dial("tcp6", net.JoinHostPort("::1", port))
	if err == nil {
		c.Close()
		t.Fatalf("[::1]:%s accepted a connection; --listen 0.0.0.0 must serve IPv4 alone", port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("[::1]:%s: %v, want the connection refused", port, err)
	}
}
