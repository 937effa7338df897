package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// dialTimeout bounds connecting to a daemon.
	dialTimeout = 5 * time.Second
	// pingTimeout bounds the ping that starts every Spawn and Health.
	pingTimeout = 5 * time.Second
	// consoleSizeAPI is the first API version whose daemon honours a
	// console size given at create (containers) or exec start (execs).
	consoleSizeAPI = "1.42"
)

// daemon is one Docker daemon, as named by a config's host (empty: the
// plugin's environment, DOCKER_HOST, else the default socket).
type daemon struct {
	host string // as configured; "" is the environment's
	// api talks to the daemon; it negotiates the API version on its first
	// request.
	api *client.Client
	// probe is a client that opens a fresh connection for every request:
	// a ping through it fails as soon as the daemon stops listening, even
	// while connections opened before are still being served.
	probe *client.Client

	directMu sync.Mutex
	// directMu protects the following: the last direct terminal that
	// failed at its start on this daemon (direct.go, noDirect).
	directFailed   error
	directFailedAt time.Time
}

// daemons is the set of daemons the plugin has talked to, one per host.
type daemons struct {
	mu sync.Mutex
	// mu protects the following.
	byHost map[string]*daemon
}

// get returns the daemon for host, creating its clients on first use.
// Creating a client does not connect.
func (ds *daemons) get(host string) (*daemon, error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d, ok := ds.byHost[host]; ok {
		return d, nil
	}
	api, err := newClient(host, true)
	if err != nil {
		return nil, err
	}
	probe, err := newClient(host, false)
	if err != nil {
		api.Close()
		return nil, err
	}
	d := &daemon{host: host, api: api, probe: probe}
	if ds.byHost == nil {
		ds.byHost = map[string]*daemon{}
	}
	ds.byHost[host] = d
	return d, nil
}

// close closes every client.
func (ds *daemons) close() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, d := range ds.byHost {
		d.api.Close()
		d.probe.Close()
	}
	ds.byHost = nil
}

// newClient returns a client for host (empty: from the environment) whose
// connections are dialed with dialTimeout. keepAlive false makes every
// request use a new connection. A tcp:// daemon is reached over TLS that
// verifies its certificate (daemonTLS); any other address but a unix
// socket is refused (checkHost), DOCKER_HOST's too.
func newClient(host string, keepAlive bool) (*client.Client, error) {
	if host == "" {
		host = os.Getenv(client.EnvOverrideHost)
	}
	if host == "" {
		host = client.DefaultDockerHost
	}
	if err := checkHost(host); err != nil {
		return nil, fmt.Errorf("%w: host: %w", shared.ErrInvalidConfig, err)
	}
	u, err := client.ParseHostURL(host)
	if err != nil {
		return nil, fmt.Errorf("%w: host: %w", shared.ErrInvalidConfig, err)
	}
	network, addr := u.Scheme, u.Host
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	if network == "tcp" {
		cfg, err := daemonTLS()
		if err != nil {
			return nil, fmt.Errorf("docker daemon at %s: %w", host, err)
		}
		// The handshake happens in our dialer, not in the transport
		// (TLSClientConfig): the client dials its hijacked streams
		// (attach, exec) with the transport's dialer only when the
		// transport has no TLS config, and otherwise with a tls.Dial
		// of its own that has no timeout. So every connection, request
		// or stream, gets the same verification and dialTimeout (which
		// bounds the handshake too), and the transport keeps our
		// settings: client.WithTLSClientConfigFromEnv would replace it,
		// losing DisableKeepAlives.
		tlsDialer := &tls.Dialer{NetDialer: dialer, Config: cfg}
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return tlsDialer.DialContext(ctx, "tcp", addr)
		}
	}
	tr := &http.Transport{
		DialContext:       dial,
		DisableKeepAlives: !keepAlive,
		// No Proxy: the dialer reaches the daemon directly whatever
		// address the transport asks for, so a proxy from HTTP_PROXY
		// would only change how requests are written.
		DisableCompression:    network == "unix", // as WithHost sets it
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // waits and pulls stream for long
	}
	// Order matters: WithHost configures the transport it finds (its
	// dialer, its proxy), so it goes first, on the client's default
	// transport, and then ours replaces that one untouched.
	// WithDialContext sets our dialer again, as the client also reads it
	// for hijacked streams (dialerFromTransport).
	return client.New(
		client.WithHost(host),
		client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}),
		client.WithDialContext(dial),
		client.WithAPIVersionFromEnv(),
		client.WithUserAgent("ptyhost-plugin-docker/"+Version),
	)
}

// daemonTLS is the TLS configuration for a daemon at a tcp:// address,
// from the files in DOCKER_CERT_PATH that the docker CLI reads: the
// daemon's certificate must be signed by ca.pem — alone, not the system's
// roots, as for a daemon set up with its own CA as Docker documents — and
// the plugin presents cert.pem and key.pem, without which the daemon
// would serve anyone. Unlike client.WithTLSClientConfigFromEnv it never
// skips the verification; a configuration that asks to (no
// DOCKER_TLS_VERIFY) is refused.
func daemonTLS() (*tls.Config, error) {
	if err := checkTLSEnv(); err != nil {
		return nil, fmt.Errorf("%w: %w", shared.ErrInvalidConfig, err)
	}
	dir := os.Getenv(envCertPath)
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("%w: the daemon's CA (%s): %w", shared.ErrUnavailable, envCertPath, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", shared.ErrUnavailable, filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("%w: the plugin's client certificate (%s): %w", shared.ErrUnavailable, envCertPath, err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ping checks that the daemon answers, within pingTimeout, and negotiates
// the API version. Failures wrap shared.ErrUnavailable.
func (d *daemon) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := d.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return d.unavailable(err)
	}
	return nil
}

// alive reports whether the daemon accepts new connections now.
func (d *daemon) alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, err := d.probe.Ping(ctx, client.PingOptions{})
	return err
}

// unavailable wraps err, a failure to reach the daemon, in
// shared.ErrUnavailable with the daemon's address.
func (d *daemon) unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v", pingTimeout)
	}
	return fmt.Errorf("%w: docker daemon at %s: %w", shared.ErrUnavailable, d.api.DaemonHost(), err)
}

// local reports whether the daemon is on this machine: its host is a unix
// socket.
func (d *daemon) local() bool { return strings.HasPrefix(d.api.DaemonHost(), "unix://") }

// consoleSizeAtCreate reports whether the negotiated API honours a console
// size at create and exec start. Call it after ping.
func (d *daemon) consoleSizeAtCreate() bool {
	return !versions.LessThan(d.api.ClientVersion(), consoleSizeAPI)
}

// classify wraps an error of the daemon in the sentinel that says whose
// fault it is: unreachable daemon → ErrUnavailable; a request the daemon
// rejects as invalid, or a user the image lacks → ErrInvalidArgument.
func (d *daemon) classify(what string, err error) error {
	if what != "" {
		err = fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case client.IsErrConnectionFailed(err), isConnError(err):
		return d.unavailable(err)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%w: %w", shared.ErrInvalidArgument, err)
	case userMissing(err):
		return fmt.Errorf("%w: the image has no such user or group (the environment's \"user\"): %w", shared.ErrInvalidArgument, err)
	}
	return err
}

// userMissing reports whether err is the runtime refusing to start a
// process as a user or group the image's passwd or group file lacks
// ("unable to find user nosuch: no matching entries in passwd file"),
// which the daemon reports as its own failure (a 500): it is the
// session's config at fault. Only the runtime's message tells.
func userMissing(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "unable to find user ") || strings.Contains(msg, "unable to find group ")
}

// isConnError reports whether err is a broken or refused connection.
func isConnError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr)
}
