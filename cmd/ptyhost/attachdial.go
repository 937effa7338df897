package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// dialAttach opens the WebSocket, resuming at offset when it is not nil
// and read-only when readOnly, and reads the hello, turning a refused
// upgrade into a helpful error. A connection that ends before the hello
// is an error wrapping wsproto.ErrHelloLost.
func dialAttach(ctx context.Context, c *client, watch *connWatch, id string, readOnly bool, stdio stdio, offset *int64) (*wsproto.Conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := watch.httpClient(c.http)
	conn, err := wsproto.Dial(dialCtx, c.wsURL(wsproto.AttachPath(id)), wsproto.DialOptions{
		HTTPClient: hc,
		Header:     c.header(),
		Offset:     offset,
		ReadOnly:   readOnly,
	})
	hc.CloseIdleConnections() // the dial's own transport: nothing else uses it
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return nil, attachError(c, id, stdio, err)
}

// attachError explains an error of wsproto.Dial.
func attachError(c *client, id string, stdio stdio, err error) error {
	var he *wsproto.HandshakeError
	switch {
	case errors.As(err, &he):
		if he.StatusCode < 400 {
			return fmt.Errorf("the server at %s did not accept a WebSocket (HTTP %d)", c.base.Redacted(), he.StatusCode)
		}
		ae := newAPIError(he.StatusCode, he.Body)
		switch he.StatusCode {
		case http.StatusNotFound:
			ae.Message = fmt.Sprintf("session %s not found", id)
		case http.StatusGone:
			if ae.ExitCode != nil {
				fmt.Fprintf(stdio.err, "ptyhost: session %s has ended (exit code %d)\n", cell(id), *ae.ExitCode)
				return exitError{endStatus(exitStatus(*ae.ExitCode, ""), ae.Abnormal)}
			}
			ae.Message = fmt.Sprintf("session %s has ended", id)
		}
		return ae
	case errors.Is(err, wsproto.ErrSubprotocol):
		return fmt.Errorf("the server at %s does not speak %s", c.base.Redacted(), wsproto.Subprotocol)
	case errors.Is(err, wsproto.ErrNoHello):
		return wsproto.ErrNoHello
	case errors.Is(err, wsproto.ErrBadOffset):
		return err
	case errors.Is(err, wsproto.ErrHelloLost):
		return err
	}
	return c.connError(err)
}
