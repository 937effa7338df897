package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/shared"
)

// link is one live SSH connection to an environment's host, through its
// jump host if it has one.
type link struct {
	client *ssh.Client
	jump   *ssh.Client // nil without a jump host
	wire   *wireConn   // the target connection's transport
	// jumpWire is the jump host connection's transport (nil without a
	// jump host). When it fails, the tunnel in it ends too, and the
	// target's transport reads a plain end of file: only jumpWire tells
	// that the jump host was lost, not the target.
	jumpWire *wireConn
}

// close closes the connection and the jump host's.
func (l *link) close() {
	_ = l.client.Close()
	if l.jump != nil {
		_ = l.jump.Close()
	}
}

// dialer opens SSH connections: TCP, handshake, host key check and
// authentication, bounded by the config's connect_timeout.
type dialer struct {
	logger   hclog.Logger
	hostKeys *hostKeys
	getenv   func(string) string
}

// dial connects to cfg's host. Errors: an unreachable host or one that does
// not answer in time wraps shared.ErrUnavailable; a bad identity file or a
// missing variable wraps shared.ErrInvalidConfig; a host key or
// authentication failure is a plain error saying what failed.
func (d *dialer) dial(ctx context.Context, cfg *config) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	target := &cfg.Target
	if cfg.Jump == nil {
		nc, err := dialTCP(ctx, target, cfg)
		if err != nil {
			return nil, err
		}
		wire := newWireConn(nc)
		client, err := d.handshake(ctx, wire, target, cfg, "")
		if err != nil {
			return nil, err
		}
		return &link{client: client, wire: wire}, nil
	}

	jump := cfg.Jump
	nc, err := dialTCP(ctx, jump, cfg)
	if err != nil {
		return nil, fmt.Errorf("jump host: %w", err)
	}
	jumpWire := newWireConn(nc)
	jumpClient, err := d.handshake(ctx, jumpWire, jump, cfg, "jump host ")
	if err != nil {
		return nil, err
	}
	tc, err := jumpClient.DialContext(ctx, "tcp", target.addr())
	if err != nil {
		_ = jumpClient.Close()
		if ctx.Err() != nil {
			return nil, timeoutError(target, cfg)
		}
		return nil, fmt.Errorf("%w: ssh: jump host %s cannot reach %s: %v", shared.ErrUnavailable, jump.addr(), target.addr(), err)
	}
	wire := newWireConn(tc)
	client, err := d.handshake(ctx, wire, target, cfg, "")
	if err != nil {
		_ = jumpClient.Close()
		return nil, err
	}
	return &link{client: client, jump: jumpClient, wire: wire, jumpWire: jumpWire}, nil
}

// dialTCP opens the TCP connection to ep.
func dialTCP(ctx context.Context, ep *endpoint, cfg *config) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", ep.addr())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, timeoutError(ep, cfg)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: ssh: cannot reach %s: %v", shared.ErrUnavailable, ep.addr(), unwrapDialErr(err))
	}
	return nc, nil
}

// handshake runs the SSH handshake with ep over nc and returns the client.
// It closes nc when it fails. what prefixes messages ("jump host ").
func (d *dialer) handshake(ctx context.Context, nc net.Conn, ep *endpoint, cfg *config, what string) (*ssh.Client, error) {
	creds, err := loadCredentials(ep, d.getenv)
	if err != nil {
		nc.Close()
		return nil, prefixErr(what, err)
	}
	check, err := d.hostKeys.check(ep)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ssh: %s%s: %w", what, ep.addr(), err)
	}
	methods, releaseAgent := creds.methods(ctx)
	defer releaseAgent()
	cc := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              methods,
		HostKeyCallback:   check.callback,
		HostKeyAlgorithms: check.algorithms,
		ClientVersion:     "SSH-2.0-ptyhost_" + Version,
	}
	// NewClientConn takes no context: closing the connection stops it.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(nc, ep.addr(), cc)
	if !stop() {
		if err == nil {
			conn.Close()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, prefixErr(what, timeoutError(ep, cfg))
		}
		return nil, ctx.Err()
	}
	if err != nil {
		nc.Close()
		return nil, prefixErr(what, classifyHandshake(err, ep, check, creds))
	}
	args := []any{"host", ep.String(), "auth", creds.describe(), "host_key_check", ep.HostKeyCheck, "server", string(conn.ServerVersion())}
	if what != "" {
		args = append(args, "jump_host", true)
	}
	d.logger.Info("connected", args...)
	return ssh.NewClient(conn, chans, reqs), nil
}

// classifyHandshake turns a failed handshake into an error that says which
// step failed.
func classifyHandshake(err error, ep *endpoint, check *hostKeyCheck, creds *credentials) error {
	var hke *hostKeyError
	switch {
	case errors.As(err, &hke):
		return fmt.Errorf("ssh: %w", hke)
	case !check.called && len(check.keyAlgorithms) > 0 && strings.Contains(err.Error(), "no common algorithm for host key"):
		return fmt.Errorf("ssh: %w", check.noCommonHostKeyError(err))
	case !check.called && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("%w: ssh: %s closed the connection before the SSH handshake finished (is it an SSH server, and is it refusing connections?): %v",
			shared.ErrUnavailable, ep.addr(), err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("ssh: authentication failed for %s: the server accepted none of: %s (%v)", ep, creds.describe(), unwrapHandshake(err))
	default:
		return fmt.Errorf("ssh: handshake with %s failed: %w", ep.addr(), err)
	}
}

// timeoutError is the error of a connection that did not complete within
// connect_timeout.
func timeoutError(ep *endpoint, cfg *config) error {
	return fmt.Errorf("%w: ssh: %s did not answer within %v (connect_timeout)", shared.ErrUnavailable, ep.addr(), cfg.ConnectTimeout)
}

func prefixErr(what string, err error) error {
	if what == "" {
		return err
	}
	return fmt.Errorf("%s%w", what, err)
}

// unwrapDialErr drops net.OpError's "dial tcp" decoration, keeping the
// cause ("connection refused").
func unwrapDialErr(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed: " prefix.
func unwrapHandshake(err error) string {
	return strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")
}

// wireConn is a connection that remembers why it stopped reading, so that a
// session can say why its connection was lost: x/crypto closes the session
// channels only after the read has failed, so the reason is known by then.
//
// It also reads ahead: x/crypto reads each packet's header through a 4 KiB
// bufio.Reader and then the rest of the packet, two or more reads per
// packet, and a remote terminal's output comes in packets of a few KiB
// (sshd sends what each read of its terminal returned). wireConn reads
// through a bufio.Reader of wireReadAhead bytes, so a flood costs one
// read(2) per many packets; a read error comes after the bytes read
// before it. Reads are x/crypto's, one at a time: the handshake's, then
// its read loop's.
type wireConn struct {
	net.Conn
	r *bufio.Reader // reads Conn through errorReader

	mu  sync.Mutex
	err error // mu protects err
}

// wireReadAhead is the most a wireConn reads at once: two of sshd's
// largest packets (32 KiB of data each).
const wireReadAhead = 64 << 10

func newWireConn(c net.Conn) *wireConn {
	w := &wireConn{Conn: c}
	w.r = bufio.NewReaderSize(errorReader{w}, wireReadAhead)
	return w
}

func (w *wireConn) Read(p []byte) (int, error) { return w.r.Read(p) }

// errorReader reads w's connection, remembering the first error.
type errorReader struct{ w *wireConn }

func (e errorReader) Read(p []byte) (int, error) {
	n, err := e.w.Conn.Read(p)
	if err != nil {
		e.w.mu.Lock()
		if e.w.err == nil {
			e.w.err = err
		}
		e.w.mu.Unlock()
	}
	return n, err
}

// readErr returns the first read error, or nil.
func (w *wireConn) readErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
