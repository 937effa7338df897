package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// defaultDetachKey is Ctrl-], as in telnet.
const defaultDetachKey = 0x1d

// inputBufSize is how much stdin is read, and sent as one binary frame, at
// a time.
const inputBufSize = 32 << 10

// attachOptions says what to attach to and how.
type attachOptions struct {
	id string
	// detachKey is the byte that detaches, or -1 for none.
	detachKey int
	// winch delivers "the terminal may have changed size". When nil and
	// stdin is a terminal, attach watches the terminal itself
	// (notifyResize: SIGWINCH, or on Windows its size polled); tests
	// inject a channel instead. Ignored when stdin is not a terminal.
	winch <-chan os.Signal
	// reconnect is how long attach keeps trying to attach again after the
	// connection drops; zero or less gives up at once.
	reconnect time.Duration
	// restoreModes makes attach follow the modes the session's output
	// turns on (termModes) and turn them off again on the way out,
	// whatever the end, before its last line. attach does so anyway when
	// stdio.out is a terminal; a file or pipe gets the output byte for
	// byte and nothing else. Tests set it with a buffer for stdout.
	restoreModes bool
	// readOnly attaches as a viewer (wsproto.DialOptions.ReadOnly): no
	// size is sent and nothing typed is; the detach key still detaches.
	readOnly bool
	// stall is how long attach waits for anything from the server (its
	// pings included) before it takes the connection for lost
	// (liveness.go); zero means defaultStallTimeout. Tests shorten it.
	stall time.Duration
	// inputStall is how long one send of what was typed (or of the size)
	// may wait for the server to take it before attach ends the
	// connection (inputStallError); zero means defaultInputStall. Tests
	// shorten it.
	inputStall time.Duration
}

// attachEnd says why an attachment ended without an error.
type attachEnd int

const (
	endExited    attachEnd = iota // the process exited; see attachResult.code
	endDetached                   // the user pressed the detach key
	endDestroyed                  // the server closed normally without an exit message
)

type attachResult struct {
	end  attachEnd
	code int // exit status for endExited
}

// attach connects stdio to session opts.id until the process exits, the
// user detaches, the server ends the session or ctx is done (then it
// returns context.Cause(ctx)). When the connection drops without the
// server saying the session ended, attach reconnects for up to
// opts.reconnect and resumes at the offset it had received (reconnect.go).
//
// When stdio.in is a terminal it is put in raw mode for the duration and
// always restored before attach returns. With opts.readOnly, attach says
// so in a line, sends no size and forwards no keys: it only watches for
// the detach key. When stdio.out is a terminal (or opts.restoreModes),
// the modes the session's output turned on there (the alternate screen,
// a hidden cursor, mouse reporting…; termModes) are turned off again
// when the session's program is restarted in place, before the one line
// saying why attach ended, and in any case before attach returns. attach
// waits for every goroutine
// it starts except the one reading stdio.in, which may stay blocked in
// Read until stdio.in delivers data, EOF or an error (then it finds the
// attachment over and ends); that goroutine never touches stdio.out or
// stdio.err.
func attach(ctx context.Context, c *client, stdio stdio, opts attachOptions) (attachResult, error) {
	out := stdio.out // the terminal's own output, for openTerminal
	var modes *termModes
	if opts.restoreModes || isTerminal(stdio.out) {
		// Output goes through the tracker. Its resets go out before the
		// line attach prints on the way out (a line printed on the
		// alternate screen would vanish with it), and in any case before
		// attach returns.
		modes = &termModes{w: stdio.out}
		stdio.out = modes
		defer modes.restore()
	}
	watch := &connWatch{}
	conn, err := dialAttach(ctx, c, watch, opts.id, opts.readOnly, stdio, nil)
	if err != nil {
		if errors.Is(err, wsproto.ErrHelloLost) {
			// Ended before hello: say why as for one that ended later.
			a := &attachment{errw: stdio.err}
			return a.finish(closeResult(err, nil))
		}
		return attachResult{}, err
	}
	defer func() { conn.Close() }()

	tty := openTerminal(stdio.in, out)
	if tty != nil {
		if err := tty.makeRaw(); err != nil {
			return attachResult{}, fmt.Errorf("setting terminal to raw mode: %w", err)
		}
		// The modes' resets go out while the terminal still takes them
		// (a Windows console interprets escape sequences only until
		// restore), whatever the end.
		defer func() {
			modes.restore()
			tty.restore()
		}()
	}
	// sizer is the terminal whose size the session follows: none for a
	// viewer, whose resizes the server would refuse.
	sizer := tty
	if opts.readOnly {
		sizer = nil
		fmt.Fprintf(stdio.err, "[attached read-only to session %s: what you type is not sent%s]\r\n", cell(opts.id), detachHint(opts.detachKey))
	}

	// loopCtx bounds every goroutine below; it is cancelled, and they are
	// waited for, before the terminal is restored.
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var winch <-chan os.Signal
	if sizer != nil {
		winch = opts.winch
		if winch == nil {
			ch, stop := notifyResize(loopCtx, sizer)
			defer stop()
			winch = ch
		}
	}

	in := newInput()
	// Not in wg: it may be blocked in stdio.in.Read indefinitely.
	go in.pump(loopCtx, stdio.in, opts.detachKey)

	a := &attachment{out: stdio.out, errw: stdio.err, modes: modes, readOnly: opts.readOnly, watch: watch, stall: opts.stall, inputStall: opts.inputStall}
	if a.stall <= 0 {
		a.stall = defaultStallTimeout
	}
	if a.inputStall <= 0 {
		a.inputStall = defaultInputStall
	}
	for {
		// dialAttach has read the hello.
		a.conn = conn
		h := conn.Hello()
		a.history.reset(h.Offset, h.End)
		ev := a.serve(ctx, loopCtx, &wg, sizer, winch, in)
		switch ev.kind {
		case eventDetached:
			a.modes.restore()
			fmt.Fprintf(stdio.err, "\r\n[%s]\r\n", cell(detachLine(ctx, c, "detached from session", opts)))
			return attachResult{end: endDetached}, nil
		case eventInputErr:
			return attachResult{}, fmt.Errorf("reading input: %w", ev.err)
		case eventDone:
			return attachResult{}, context.Cause(ctx)
		}
		if ctx.Err() != nil {
			// The connection ended because ctx did.
			return attachResult{}, context.Cause(ctx)
		}
		if ev.read.retry && opts.reconnect <= 0 {
			// The session may go on without us: say how to come back.
			ev.read.err = &goesOnError{err: ev.read.err, hint: "reattach with '" + attachCommand(opts) + "'"}
		}
		if !ev.read.retry || opts.reconnect <= 0 {
			return a.finish(ev.read)
		}
		next, res, err := a.reconnect(ctx, c, stdio, opts, in, conn.Offset(), ev.read.err)
		if next == nil {
			return res, err
		}
		conn = next
	}
}

// eventKind says why serve returned.
type eventKind int

const (
	eventRead     eventKind = iota // the connection ended; see event.read
	eventDetached                  // the user pressed the detach key
	eventInputErr                  // reading stdin failed; see event.err
	eventDone                      // ctx is done
)

type event struct {
	kind eventKind
	read readResult
	err  error
}

// serve runs a.conn until it ends, the user detaches, stdin fails or ctx
// is done, and returns which. Whatever the end, the connection is closed
// and its reader has ended when serve returns, so nothing writes to
// stdout afterwards. Input read from in is sent by a.send, in order; a
// detach first waits up to detachGrace for every byte typed before the
// detach key to be sent; a read-only attachment drops it. tty, when not
// nil, is the terminal whose size is sent now and on every winch. Nothing
// serve's loop does waits on the server: one that stops reading keeps
// neither the detach key nor an interrupt waiting.
func (a *attachment) serve(ctx, loopCtx context.Context, wg *sync.WaitGroup, tty *terminal, winch <-chan os.Signal, in *input) event {
	connCtx, connCancel := context.WithCancel(loopCtx)
	defer connCancel()
	// inputCtx also ends with ctx, so that an Input blocked on a stalled
	// connection does not keep an interrupt waiting.
	inputCtx, inputCancel := context.WithCancel(connCtx)
	defer inputCancel()
	stop := context.AfterFunc(ctx, inputCancel)
	defer stop()
	readerDone := make(chan readResult, 1)
	var stalled, inputStalled atomic.Bool
	wg.Go(func() {
		r := a.readLoop(connCtx)
		connCancel() // unblocks a pending Input
		switch {
		case !r.retry:
		case stalled.Load():
			// watchStall closed it: say why, rather than how the
			// read then failed.
			r.err = stallError{a.stall}
		case inputStalled.Load():
			r.err = inputStallError{a.inputStall}
		}
		readerDone <- r
	})
	conn := a.conn
	wg.Go(func() { a.watchStall(connCtx, conn, &stalled) })
	resized := make(chan struct{}, 1)
	if tty != nil {
		resized <- struct{}{}
	}
	// The sender ends before serve returns: the next connection's must not
	// meet it.
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		a.send(inputCtx, conn, in, tty, resized, &inputStalled)
	}()
	defer func() { inputCancel(); <-sendDone }()
	// closeAndWait ends the connection from our side and waits for the
	// reader. A send the server does not take is abandoned first: it would
	// hold the close frame back.
	closeAndWait := func(code int, reason string) {
		inputCancel()
		_ = a.conn.CloseWith(code, reason)
		<-readerDone
	}
	for {
		select {
		case r := <-readerDone:
			return event{kind: eventRead, read: r}
		case <-winch:
			poke(resized)
		case <-in.detached:
			in.settle(connCtx, detachGrace)
			closeAndWait(wsproto.CloseNormal, "detached")
			return event{kind: eventDetached}
		case err := <-in.err:
			in.settle(connCtx, detachGrace)
			closeAndWait(wsproto.CloseNormal, "input closed")
			return event{kind: eventInputErr, err: err}
		case <-ctx.Done():
			closeAndWait(wsproto.CloseGoingAway, "client exiting")
			return event{kind: eventDone}
		}
	}
}

// attachment is one live attach connection.
type attachment struct {
	conn *wsproto.Conn
	out  io.Writer // written only by readLoop
	errw io.Writer // written by readLoop, then by attach once readLoop is done
	// modes follows the terminal modes of out, when out is a terminal
	// (nil otherwise); restored before the line saying why attach ends,
	// and when the session's program is restarted.
	modes *termModes
	// readOnly: what is typed is dropped, not sent.
	readOnly bool
	// history keeps the queries in the replay from the local terminal,
	// which would answer them on stdin (historyFilter).
	history historyFilter
	// watch follows the network connection under conn; after stall
	// without anything from the server, serve closes conn (liveness.go).
	watch *connWatch
	stall time.Duration
	// inputStall bounds each send of what is typed (attachment.send).
	inputStall time.Duration
}

// readResult is how readLoop ended.
type readResult struct {
	attachResult
	// line says what happened to the session, for the one line attach
	// prints when it ends without an error ("session exited with code
	// 3"); "" for none.
	line string
	err  error
	// retry says the connection ended without the server saying the
	// session did: it dropped, or the server is going away. Attaching
	// again may resume it.
	retry bool
}

// readLoop copies output to a.out and handles control messages until the
// connection ends.
func (a *attachment) readLoop(ctx context.Context) readResult {
	var exit *wsproto.Exit
	for {
		f, err := a.conn.Next(ctx)
		if err != nil {
			return closeResult(err, exit)
		}
		if f.Kind == wsproto.FrameOutput {
			p := a.history.filter(f.Data)
			done := a.watch.writing()
			_, err := a.out.Write(p)
			done()
			if err != nil {
				return readResult{err: fmt.Errorf("writing output: %w", err)}
			}
			continue
		}
		// A message that does not decode, or of a type not known here,
		// is not ours to judge: a newer server may send more.
		switch m := f.Msg; m.Type {
		case wsproto.TypeReset:
			// Full terminal reset; the replay from m.Offset follows, its
			// history up to m.End.
			a.history.reset(m.Offset, m.End)
			if _, err := io.WriteString(a.out, "\x1bc"); err != nil {
				return readResult{err: fmt.Errorf("writing output: %w", err)}
			}
		case wsproto.TypeModes:
			// The terminal modes the replay starts in; not output.
			if _, err := io.WriteString(a.out, m.Data); err != nil {
				return readResult{err: fmt.Errorf("writing output: %w", err)}
			}
		case wsproto.TypeExit:
			e := m.Exit()
			exit = &e
		case wsproto.TypeError:
			fmt.Fprintf(a.errw, "\r\nptyhost: server: %s\r\n", cell(m.Message))
		case wsproto.TypeResize:
			// Another client resized the session; the local terminal
			// keeps its own size.
		case wsproto.TypeRestarted:
			// The session's program was replaced; the new one starts
			// from a fresh terminal's modes, and its output follows.
			// Nothing is printed: the session, and this attachment, go
			// on.
			a.modes.restore()
		}
	}
}

// closeResult interprets the error that ended the read loop.
func closeResult(err error, exit *wsproto.Exit) readResult {
	if exit != nil {
		// All output came before the exit message; however the
		// connection then ended, the session is over. A server that
		// hangs its sessions up as it stops (--hang-up-on-stop, 'ptyhost
		// stop --hang-up') sends their exit, typically SIGHUP's, then
		// closes with 1001: the process did not choose that end, and
		// attach exits 1, as its help says of a server shutting down,
		// rather than 129.
		if code, _, ok := wsproto.CloseStatus(err); ok && code == wsproto.CloseGoingAway {
			line := "session ended: the server shut down and hung it up"
			if exit.Reason != "" {
				line += " (" + exit.Reason + ")"
			}
			return readResult{attachResult: attachResult{end: endExited, code: 1}, line: line}
		}
		line := fmt.Sprintf("session exited with code %d", exit.Code)
		switch {
		case exit.Reason != "":
			line = "session ended: " + exit.Reason
		case exit.Signal != "":
			line = "session killed by " + exit.Signal
		}
		return readResult{
			attachResult: attachResult{end: endExited, code: endStatus(exitStatus(exit.Code, exit.Signal), exit.Reason != "")},
			line:         line,
		}
	}
	if code, reason, ok := wsproto.CloseStatus(err); ok {
		switch code {
		case wsproto.CloseNormal:
			line := "session destroyed"
			if reason != "" && reason != wsproto.CloseReasonDestroyed {
				line = "session closed by the server: " + reason
			}
			return readResult{attachResult: attachResult{end: endDestroyed}, line: line}
		case wsproto.CloseGoingAway:
			return readResult{err: errors.New("the server is shutting down"), retry: true}
		case wsproto.CloseRestart:
			// The server stopped without ending the session: the next
			// server takes it up, and the attachment resumes at its offset.
			return readResult{err: errors.New("the server is restarting; the session goes on"), retry: true}
		case wsproto.CloseNodeLost:
			// In a cluster, the node that runs the session is away: it
			// may come back with the session, and the attachment resumes.
			return readResult{err: errors.New("the node that runs the session is lost"), retry: true}
		default:
			return readResult{err: fmt.Errorf("the server closed the connection: %d %s", code, reason)}
		}
	}
	if errors.Is(err, wsproto.ErrBadOffset) {
		// The server broke the protocol: resuming would not mend it.
		return readResult{err: err}
	}
	return readResult{err: fmt.Errorf("connection to the server lost: %w", err), retry: true}
}

// finish turns the reader's result into attach's: it restores the
// terminal's modes, then prints the one line that says what happened to
// the session (an error is printed by the caller, as one line too).
func (a *attachment) finish(r readResult) (attachResult, error) {
	if r.err != nil {
		return attachResult{}, r.err
	}
	a.modes.restore()
	if r.line != "" {
		fmt.Fprintf(a.errw, "\r\n[%s]\r\n", cell(r.line))
	}
	return r.attachResult, nil
}

// endStatus is status, an exitStatus, for a session whose end was abnormal
// or not: an end its process did not choose (an exit with a reason, a
// session recorded ERROR) is never a success, whatever code came with it.
func endStatus(status int, abnormal bool) int {
	if abnormal && status == 0 {
		return 1
	}
	return status
}

// exitStatus is the status this process exits with for a session that
// exited with code or was killed by signal: 128+N for signal N, as shells
// do, and 1 for anything that does not fit an exit status.
func exitStatus(code int, signal string) int {
	if signal != "" {
		if n := signalNumber(signal); n != 0 {
			return 128 + n
		}
		return 1
	}
	if code < 0 || code > 255 {
		return 1
	}
	return code
}
