package main

import (
	"context"
	"io"
	"net"
	"regexp"
	"strings"
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
