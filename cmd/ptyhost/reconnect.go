package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// When an attachment's connection drops without the server saying the
// session ended (a network failure, the server going away), attach dials
// again with backoff, resuming at the output offset it had received: the
// server sends exactly the bytes from there on while it keeps them, else a
// reset and a replay. It gives up when the session is gone (404, 410) or
// the server refuses for good (another 4xx), and after
// attachOptions.reconnect.

// defaultReconnect is --reconnect's default.
const defaultReconnect = 30 * time.Second

// newReconnectFlag registers --reconnect.
func newReconnectFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("reconnect", defaultReconnect, "how long to keep trying to attach again when the connection drops (`DURATION`; 0 gives up at once)")
}

// Backoff between attempts: it starts at reconnectFirst and doubles up to
// reconnectMax.
const (
	reconnectFirst = 250 * time.Millisecond
	reconnectMax   = 4 * time.Second
)

// reconnect attaches to opts.id again from offset off after the
// connection ended with cause. It returns the new connection, or nil and
// what attach returns: the session's end, an error, or a detach or
// interruption while it waited.
func (a *attachment) reconnect(ctx context.Context, c *client, stdio stdio, opts attachOptions, in *input, off int64, cause error) (*wsproto.Conn, attachResult, error) {
	_ = a.conn.Close()
	fmt.Fprintf(stdio.err, "\r\n[%v; reconnecting…]\r\n", cause)
	giveUp := time.Now().Add(opts.reconnect)
	wait := reconnectFirst
	for {
		conn, err := dialResume(ctx, c, opts.id, off, giveUp)
		if err == nil {
			fmt.Fprint(stdio.err, "[reconnected]\r\n")
			return conn, attachResult{}, nil
		}
		if ctx.Err() != nil {
			return nil, attachResult{}, context.Cause(ctx)
		}
		if final(err) {
			if errors.Is(err, wsproto.ErrHelloLost) {
				res, ferr := a.finish(closeResult(err, nil))
				return nil, res, ferr
			}
			a.modes.restore() // attachError may print the session's end
			return nil, attachResult{}, attachError(c, opts.id, stdio, err)
		}
		if !time.Now().Add(wait).Before(giveUp) {
			return nil, attachResult{}, fmt.Errorf("gave up reconnecting after %v: %w", opts.reconnect, attachError(c, opts.id, stdio, err))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-in.detached:
			t.Stop()
			a.modes.restore()
			fmt.Fprintf(stdio.err, "[stopped reconnecting; session %s%s]\r\n", opts.id, detachFate(ctx, c, opts.id))
			return nil, attachResult{end: endDetached}, nil
		case err := <-in.err:
			t.Stop()
			return nil, attachResult{}, fmt.Errorf("reading input: %w", err)
		case <-ctx.Done():
			t.Stop()
			return nil, attachResult{}, context.Cause(ctx)
		}
		wait = min(2*wait, reconnectMax)
	}
}

// dialResume dials once, resuming at off, within the time left.
func dialResume(ctx context.Context, c *client, id string, off int64, giveUp time.Time) (*wsproto.Conn, error) {
	dialCtx, cancel := context.WithDeadline(ctx, giveUp.Add(time.Second))
	defer cancel()
	return wsproto.Dial(dialCtx, c.wsURL(wsproto.AttachPath(id)), wsproto.DialOptions{
		HTTPClient: c.http,
		Header:     c.header(),
		Offset:     &off,
	})
}

// final reports whether a failed attach is not worth retrying: the
// session is gone (404, 410) or the server refused the request for good
// (another 4xx, a server that does not speak the protocol), or the server
// closed the connection before the hello saying the session ended.
func final(err error) bool {
	var he *wsproto.HandshakeError
	switch {
	case errors.As(err, &he):
		return he.StatusCode < 500 && he.StatusCode != http.StatusTooManyRequests
	case errors.Is(err, wsproto.ErrSubprotocol), errors.Is(err, wsproto.ErrNoHello):
		return true
	case errors.Is(err, wsproto.ErrHelloLost):
		return !closeResult(err, nil).retry
	}
	return false
}

// detachFate says what becomes of session id now that this client is
// gone, as ", which ..." to end the detach message, or "" when the server
// does not say.
func detachFate(ctx context.Context, c *client, id string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	s, err := c.getSession(ctx, id)
	if err != nil || s.IdleTimeout == "" {
		return ""
	}
	switch d, err := core.ParseIdleTimeout(s.IdleTimeout); {
	case err != nil:
		return ""
	case d == core.NoIdleTimeout:
		return ", which keeps running until it exits or is killed"
	case d == core.DestroyWhenIdle:
		return ", which is destroyed when no client is attached"
	default:
		return fmt.Sprintf(", which keeps running; it is destroyed after %v with no client attached", d)
	}
}
