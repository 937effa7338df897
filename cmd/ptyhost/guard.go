package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ptyhost/ptyhost/core/api"
)

// finishGuard completes and checks the settings of the request guard
// (api.Guard): the patterns must be valid, --metrics-auth needs a token,
// and a --listen address given as a host name is an allowed host, since
// that is the name clients use.
func (c *serveConfig) finishGuard() error {
	if c.metricsAuth && c.token == "" {
		return usageError{"--metrics-auth requires a token: set --token (or PTYHOST_TOKEN)"}
	}
	if name := listenName(c.listen); name != "" {
		c.allowedHosts = append(c.allowedHosts, name)
	}
	if err := c.guardOptions().Validate(); err != nil {
		return usageError{err.Error()}
	}
	if p, ok := c.guardOptions().AnyName(); ok && c.token == "" {
		return usageError{fmt.Sprintf("--allowed-host/--allowed-origin %q lets any web page through: without a token, a page the server's user opens could run commands through the API; set --token (or PTYHOST_TOKEN), or name the hosts", p)}
	}
	return nil
}

// guardOptions are the request guard's options.
func (c *serveConfig) guardOptions() api.GuardOptions {
	return api.GuardOptions{AllowedHosts: c.allowedHosts, AllowedOrigins: c.allowedOrigins}
}

// listenName returns the host name of a --listen address, or "" when it
// is an IP address, empty (every address) or a name the guard accepts
// anyway.
func listenName(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" || net.ParseIP(host) != nil {
		return ""
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return ""
	}
	return host
}

// metricsHandler is /metrics behind the request guard and, with
// --metrics-auth, the full token (the read-only token is 403).
func (c *serveConfig) metricsHandler(metrics http.Handler) http.Handler {
	if c.metricsAuth {
		metrics = api.RequireFullToken(metrics, api.Tokens{Token: c.token, ReadToken: c.readToken})
	}
	return api.Guard(metrics, c.guardOptions())
}
