package main

import (
	"errors"
	"strings"
	"testing"
)

// A bare HOST without a port (which would dial port 80) and a URL with a
// query or fragment (which would be dropped) are refused, naming
// --server and PTYHOST_SERVER; a URL with a scheme keeps its default
// port. A URL without a host (which would dial this machine but name the
// host ":PORT", which the server refuses) or with a port beyond 1 to
// 65535 (which only the dial would refuse, as if the server were down) is
// refused too.
func TestServerURLPortQueryFragment(t *testing.T) {
	for server, want := range map[string]string{
		"127.0.0.1":                  "no port",
		"localhost":                  "no port",
		"[::1]":                      "no port",
		"box/ptyhost":                "no port",
		"http://127.0.0.1:7420/?x=1": "query or fragment",
		"http://127.0.0.1:7420?":     "query or fragment",
		"127.0.0.1:7420#top":         "query or fragment",
		"https://box/p#":             "query or fragment",
		":7420":                      "no host",
		"http://:7420":               "no host",
		"127.0.0.1:99999":            "from 1 to 65535",
		"http://127.0.0.1:65536/":    "from 1 to 65535",
		"https://box:0":              "from 1 to 65535",
	} {
		_, err := newClient(server, "")
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "--server (PTYHOST_SERVER): ") {
			t.Errorf("newClient(%q): %v; want a usage error naming --server and saying %q", server, err, want)
		}
	}
	for server, want := range map[string]string{
		"http://example":     "http://example",
		"https://example/p/": "https://example/p",
		"http://u:p%3F@x:1/": "http://u:p%3F@x:1",
		"127.0.0.1:7420":     "http://127.0.0.1:7420",
		"[::1]:65535":        "http://[::1]:65535",
		"box:1":              "http://box:1",
	} {
		if c, err := newClient(server, ""); err != nil || c.base.String() != want {
			t.Errorf("newClient(%q): %v, %v; want %s", server, c, err, want)
		}
	}
}
