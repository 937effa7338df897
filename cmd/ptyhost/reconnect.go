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
	return waitFlag(fs, "reconnect", defaultReconnect, "how long to keep trying to attach again when the connection drops (`DURATION`; 0 gives up at once)")
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
// interruption while it waited. It reads the input all along, while it
// dials as while it waits between attempts (waitInput): the detach key
// stops it at any time, and what else is typed meanwhile is dropped, as
// the browser page drops it: keystrokes typed into a lost connection are
// not replayed into the session once it is back.
func (a *attachment) reconnect(ctx context.Context, c *client, stdio stdio, opts attachOptions, in *input, off int64, cause error) (*wsproto.Conn, attachResult, error) {
	// The session the offset counts in: one created again under the id
	// meanwhile gives a reset, not its bytes from off.
	epoch := a.conn.Hello().Epoch
	_ = a.conn.Close()
	fmt.Fprintf(stdio.err, "\r\n[%s; reconnecting…]\r\n", cell(cause.Error()))
	giveUp := time.Now().Add(opts.reconnect)
	wait := reconnectFirst
	detached := func() (*wsproto.Conn, attachResult, error) {
		a.modes.restore()
		fmt.Fprintf(stdio.err, "[%s]\r\n", cell(detachLine(ctx, c, "stopped reconnecting; session", opts)))
		return nil, attachResult{end: endDetached}, nil
	}
	for {
		conn, detach, inErr, err := a.dialWhileReading(ctx, c, opts, in, off, epoch, giveUp)
		switch {
		case detach:
			return detached()
		case inErr != nil:
			return nil, attachResult{}, fmt.Errorf("reading input: %w", inErr)
		}
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
			return nil, attachResult{}, &goesOnError{
				err:  fmt.Errorf("gave up reconnecting after %v: %w", opts.reconnect, attachError(c, opts.id, stdio, err)),
				hint: "reattach with '" + attachCommand(opts) + "' later",
			}
		}
		t := time.NewTimer(wait)
		detach, inErr = waitInput(ctx, in, t.C)
		t.Stop()
		switch {
		case detach:
			return detached()
		case inErr != nil:
			return nil, attachResult{}, fmt.Errorf("reading input: %w", inErr)
		case ctx.Err() != nil:
			return nil, attachResult{}, context.Cause(ctx)
		}
		wait = min(2*wait, reconnectMax)
	}
}

// waitInput waits until done delivers or ctx ends, dropping what is typed
// meanwhile; it returns early when the detach key is read (detach) or
// reading the input fails (inErr).
func waitInput[T any](ctx context.Context, in *input, done <-chan T) (detach bool, inErr error) {
	for {
		select {
		case <-done:
			return false, nil
		case <-in.ready:
			in.drop() // typed while there is no connection
		case <-in.detached:
			return true, nil
		case err := <-in.err:
			return false, err
		case <-ctx.Done():
			return false, nil
		}
	}
}

// dialWhileReading is dialResume, reading the input meanwhile as
// waitInput does: a detach or a failed read abandons the dial (detach,
// inErr; conn and err are then nil).
func (a *attachment) dialWhileReading(ctx context.Context, c *client, opts attachOptions, in *input, off int64, epoch string, giveUp time.Time) (conn *wsproto.Conn, detach bool, inErr, err error) {
	dialCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		conn, err = a.dialResume(dialCtx, c, opts, off, epoch, giveUp)
	}()
	detach, inErr = waitInput(ctx, in, dialed)
	if detach || inErr != nil {
		cancel()
		<-dialed
		if conn != nil {
			_ = conn.Close()
		}
		return nil, detach, inErr, nil
	}
	<-dialed // done, or ctx ended and the dial with it
	return conn, false, nil, err
}

// dialResume dials session opts.id once, resuming at off in the session
// of epoch, within the time left; read-only again when opts.readOnly.
func (a *attachment) dialResume(ctx context.Context, c *client, opts attachOptions, off int64, epoch string, giveUp time.Time) (*wsproto.Conn, error) {
	dialCtx, cancel := context.WithDeadline(ctx, giveUp.Add(time.Second))
	defer cancel()
	hc := a.watch.httpClient(c.http)
	defer hc.CloseIdleConnections() // the dial's own transport: nothing else uses it
	return wsproto.Dial(dialCtx, c.wsURL(wsproto.AttachPath(opts.id)), wsproto.DialOptions{
		HTTPClient: hc,
		Header:     c.header(),
		Offset:     &off,
		Epoch:      epoch,
		ReadOnly:   opts.readOnly,
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
	case errors.Is(err, wsproto.ErrSubprotocol), errors.Is(err, wsproto.ErrNoHello), errors.Is(err, wsproto.ErrBadOffset):
		return true
	case errors.Is(err, wsproto.ErrHelloLost):
		return !closeResult(err, nil).retry
	}
	return false
}

// goesOnError ends an attachment that leaves a session which may go on
// without it (the server is restarting, or reconnecting was given up):
// its line ends with hint, how to come back. run, which then destroys the
// session it created, drops the hint when it succeeds, and prints the
// line alone, as the one line that says what happened, when it fails.
type goesOnError struct {
	err  error
	hint string
}

func (e *goesOnError) Error() string { return e.err.Error() + "; " + e.hint }

func (e *goesOnError) Unwrap() error { return e.err }

// destroyRunSession destroys session id, which run created and whose
// attachment ended with err, and returns the error that says what
// happened.
func destroyRunSession(ctx context.Context, c *client, stdio stdio, id string, err error) error {
	// ctx may be done, so the cleanup gets its own.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	derr := c.deleteSession(cleanupCtx, id)
	var goesOn *goesOnError
	switch {
	case errors.As(err, &goesOn) && derr == nil:
		return fmt.Errorf("%w; session %s destroyed as run ended", goesOn.err, cell(id))
	case errors.As(err, &goesOn):
		// Its hint says how to come back to the session the failed
		// destroy left running.
		return err
	case derr != nil:
		fmt.Fprintf(stdio.err, "ptyhost: session %s may still be running: %s\n", cell(id), printableMessage(derr.Error()))
	}
	return err
}

// detachLine is the line, without its brackets, that attach prints when
// the user leaves session opts.id, starting with what ("detached from
// session"): what becomes of the session and, unless it is destroyed now
// that nobody is attached, the command that comes back to it.
func detachLine(ctx context.Context, c *client, what string, opts attachOptions) string {
	fate, stays := detachFate(ctx, c, opts.id, opts.readOnly)
	line := what + " " + opts.id + fate
	if stays {
		line += "; reattach with '" + attachCommand(opts) + "'"
	}
	return line
}

// attachCommand is the command that attaches to opts.id again, as this
// attachment did ("ptyhost attach --read-only ID" for a viewer).
func attachCommand(opts attachOptions) string {
	if opts.readOnly {
		return "ptyhost attach --read-only " + opts.id
	}
	return "ptyhost attach " + opts.id
}

// detachHint tells a viewer how to leave, as "; press KEY to detach" to
// end the read-only line, or "" when there is no detach key.
func detachHint(key int) string {
	if key < 0 {
		return ""
	}
	return "; press " + keyName(key) + " to detach"
}

// keyName spells the control key that sends byte b, as --detach-key does
// ("Ctrl-]"); the inverse of parseDetachKey.
func keyName(b int) string {
	if b == 0 {
		return "Ctrl-@"
	}
	return "Ctrl-" + string(rune(b+'@'))
}

// detachFate says what becomes of session id now that this client is
// gone, as ", which ..." to end the detach message, or "" when the server
// does not say. stays is false when the session is destroyed now (its
// idle timeout is 0 and this client wrote): there is nothing to come back
// to. A viewer's leaving (readOnly) changes nothing.
func detachFate(ctx context.Context, c *client, id string, readOnly bool) (fate string, stays bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	s, err := c.getSession(ctx, id)
	if err != nil || s.IdleTimeout == "" {
		return "", true
	}
	switch d, err := core.ParseIdleTimeout(s.IdleTimeout); {
	case err != nil:
		return "", true
	case d == core.NoIdleTimeout:
		return ", which keeps running until it exits or is killed", true
	case d == core.DestroyWhenIdle:
		return ", which is destroyed when its last writing client leaves", readOnly
	default:
		return fmt.Sprintf(", which keeps running; it is destroyed after %v with no writing client attached", d), true
	}
}
