package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

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
	// stdin is a terminal, attach subscribes to SIGWINCH itself; tests
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
	conn, err := dialAttach(ctx, c, opts.id, opts.readOnly, stdio, nil)
	if err != nil {
		if errors.Is(err, wsproto.ErrHelloLost) {
			// Ended before hello: say why as for one that ended later.
			a := &attachment{errw: stdio.err}
			return a.finish(closeResult(err, nil))
		}
		return attachResult{}, err
	}
	defer func() { conn.Close() }()

	tty := openTerminal(stdio.in)
	if tty != nil {
		if err := tty.makeRaw(); err != nil {
			return attachResult{}, fmt.Errorf("setting terminal to raw mode: %w", err)
		}
		defer tty.restore()
	}
	// sizer is the terminal whose size the session follows: none for a
	// viewer, whose resizes the server would refuse.
	sizer := tty
	if opts.readOnly {
		sizer = nil
		fmt.Fprintf(stdio.err, "[attached read-only to session %s: what you type is not sent%s]\r\n", opts.id, detachHint(opts.detachKey))
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
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGWINCH)
			defer signal.Stop(ch)
			winch = ch
		}
	}

	in := &input{
		chunks:   make(chan []byte),
		detached: make(chan struct{}),
		err:      make(chan error, 1),
	}
	// Not in wg: it may be blocked in stdio.in.Read indefinitely.
	go in.pump(loopCtx, stdio.in, opts.detachKey)

	a := &attachment{out: stdio.out, errw: stdio.err, modes: modes, readOnly: opts.readOnly}
	for {
		// dialAttach has read the hello.
		a.conn = conn
		ev := a.serve(ctx, loopCtx, &wg, sizer, winch, in)
		switch ev.kind {
		case eventDetached:
			a.modes.restore()
			fmt.Fprintf(stdio.err, "\r\n[%s]\r\n", detachLine(ctx, c, "detached from session", opts))
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
			ev.read.err = fmt.Errorf("%w; reattach with '%s'", ev.read.err, attachCommand(opts))
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
// stdout afterwards. Input read from in is sent on this goroutine, so
// every byte typed before the detach key is sent before the detach; a
// read-only attachment drops it. tty, when not nil, is the terminal whose
// size is sent now and on every winch.
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
	wg.Go(func() {
		r := a.readLoop(connCtx)
		connCancel() // unblocks a pending Input
		readerDone <- r
	})
	// closeAndWait ends the connection from our side and waits for the
	// reader.
	closeAndWait := func(code int, reason string) {
		_ = a.conn.CloseWith(code, reason)
		<-readerDone
	}
	if tty != nil {
		a.sendSize(connCtx, tty)
	}
	for {
		select {
		case r := <-readerDone:
			return event{kind: eventRead, read: r}
		case <-winch:
			a.sendSize(connCtx, tty)
		case p := <-in.chunks:
			if !a.readOnly {
				_ = a.conn.Input(inputCtx, p) // a failure ends the reader
			}
		case <-in.detached:
			closeAndWait(wsproto.CloseNormal, "detached")
			return event{kind: eventDetached}
		case err := <-in.err:
			closeAndWait(wsproto.CloseNormal, "input closed")
			return event{kind: eventInputErr, err: err}
		case <-ctx.Done():
			closeAndWait(wsproto.CloseGoingAway, "client exiting")
			return event{kind: eventDone}
		}
	}
}

// dialAttach opens the WebSocket, resuming at offset when it is not nil
// and read-only when readOnly, and reads the hello, turning a refused
// upgrade into a helpful error. A connection that ends before the hello
// is an error wrapping wsproto.ErrHelloLost.
func dialAttach(ctx context.Context, c *client, id string, readOnly bool, stdio stdio, offset *int64) (*wsproto.Conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := wsproto.Dial(dialCtx, c.wsURL(wsproto.AttachPath(id)), wsproto.DialOptions{
		HTTPClient: c.http,
		Header:     c.header(),
		Offset:     offset,
		ReadOnly:   readOnly,
	})
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
			return fmt.Errorf("the server at %s did not accept a WebSocket (HTTP %d)", c.base, he.StatusCode)
		}
		ae := newAPIError(he.StatusCode, he.Body)
		switch he.StatusCode {
		case http.StatusNotFound:
			ae.Message = fmt.Sprintf("session %s not found", id)
		case http.StatusGone:
			if ae.ExitCode != nil {
				fmt.Fprintf(stdio.err, "ptyhost: session %s has ended (exit code %d)\n", id, *ae.ExitCode)
				return exitError{exitStatus(*ae.ExitCode, "")}
			}
			ae.Message = fmt.Sprintf("session %s has ended", id)
		}
		return ae
	case errors.Is(err, wsproto.ErrSubprotocol):
		return fmt.Errorf("the server at %s does not speak %s", c.base, wsproto.Subprotocol)
	case errors.Is(err, wsproto.ErrNoHello):
		return wsproto.ErrNoHello
	case errors.Is(err, wsproto.ErrHelloLost):
		return err
	}
	return c.connError(err)
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
			if _, err := a.out.Write(f.Data); err != nil {
				return readResult{err: fmt.Errorf("writing output: %w", err)}
			}
			continue
		}
		// A message that does not decode, or of a type not known here,
		// is not ours to judge: a newer server may send more.
		switch m := f.Msg; m.Type {
		case wsproto.TypeReset:
			// Full terminal reset; the replay from m.Offset follows.
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
			fmt.Fprintf(a.errw, "\r\nptyhost: server: %s\r\n", m.Message)
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
			attachResult: attachResult{end: endExited, code: exitStatus(exit.Code, exit.Signal)},
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
		default:
			return readResult{err: fmt.Errorf("the server closed the connection: %d %s", code, reason)}
		}
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
		fmt.Fprintf(a.errw, "\r\n[%s]\r\n", r.line)
	}
	return r.attachResult, nil
}

// exitStatus is the status this process exits with for a session that
// exited with code or was killed by signal: 128+N for signal N, as shells
// do, and 1 for anything that does not fit an exit status.
func exitStatus(code int, signal string) int {
	if signal != "" {
		if n := unix.SignalNum(signal); n != 0 {
			return 128 + int(n)
		}
		return 1
	}
	if code < 0 || code > 255 {
		return 1
	}
	return code
}

// input reads stdin for attach, across reconnections.
type input struct {
	chunks   chan []byte   // what was typed, up to the detach key
	detached chan struct{} // closed when the detach key is read
	err      chan error    // a read error other than EOF
}

// pump reads r until it ends, the detach key is read (it closes
// in.detached after sending what came before the key) or ctx is done. A
// read error other than EOF goes to in.err; at EOF the session keeps
// running and its output keeps coming.
func (in *input) pump(ctx context.Context, r io.Reader, detachKey int) {
	buf := make([]byte, inputBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p, detach := buf[:n], false
			if detachKey >= 0 {
				if i := bytes.IndexByte(p, byte(detachKey)); i >= 0 {
					p, detach = p[:i], true
				}
			}
			if len(p) > 0 {
				select {
				case in.chunks <- bytes.Clone(p):
				case <-ctx.Done():
					return
				}
			}
			if detach {
				close(in.detached)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				in.err <- err
			}
			return
		}
	}
}

// sendSize sends the terminal's current size, if it has a usable one.
func (a *attachment) sendSize(ctx context.Context, tty *terminal) {
	cols, rows, ok := tty.size()
	if !ok {
		return
	}
	_ = a.conn.Resize(ctx, cols, rows) // a failure ends the reader
}

// terminal is stdin when it is a terminal.
type terminal struct {
	fd    int
	state *term.State // the mode to restore; nil when not raw
}

// openTerminal returns r as a terminal, or nil when it is not one.
func openTerminal(r io.Reader) *terminal {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	// Not f.Fd(): that switches f to blocking mode, and a blocking read
	// could no longer be interrupted by closing f.
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil || !term.IsTerminal(fd) {
		return nil
	}
	return &terminal{fd: fd}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	_ = rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) })
	return tty
}

func (t *terminal) makeRaw() error {
	st, err := term.MakeRaw(t.fd)
	if err != nil {
		return err
	}
	t.state = st
	return nil
}

func (t *terminal) restore() {
	if t.state != nil {
		_ = term.Restore(t.fd, t.state)
		t.state = nil
	}
}

// size returns the terminal's size, clamped to what the protocol allows;
// ok is false when the terminal has no size.
func (t *terminal) size() (cols, rows int, ok bool) {
	cols, rows, err := term.GetSize(t.fd)
	if err != nil || cols <= 0 || rows <= 0 {
		return 0, 0, false
	}
	return min(cols, 1000), min(rows, 1000), true
}

// termModes passes a session's output through to a terminal, following
// the state a full-screen program leaves it in, so that attach can leave
// the terminal as it found it, as tmux does on detach: whatever the end
// (detach, the session's exit or destruction, the server going away, an
// error, an interrupt) restore turns off what the output turned on.
//
// It follows the output rather than sending a fixed reset: a program
// that never entered the alternate screen must not get "\x1b[?1049l",
// which on xterm restores a saved cursor position that may not be where
// the cursor is, and a plain program's session ends with no extra bytes
// at all. What it follows: the DEC private modes of restoredModes, the
// keypad mode (ESC = / ESC >), the cursor style (CSI Ps SP q), the kitty
// keyboard protocol's stack (CSI > flags u / CSI < n u) and whether the
// last SGR left attributes set; a full reset (ESC c) returns them all to
// the defaults. The scroll region is not restored: its reset moves the
// cursor.
//
// It is written by one goroutine at a time: the connection's reader while
// attached, then attach itself.
type termModes struct {
	w io.Writer

	on          map[int]bool // DEC private modes whose state differs from the default
	keypad      bool         // application keypad (ESC =)
	sgr         bool         // the last SGR set attributes
	cursorStyle bool         // a cursor style other than the default was set
	kitty       int          // kitty keyboard flags pushed and not popped

	// The parser: a small subset of the VT500 state machine, enough to
	// know where sequences begin and end.
	state    vtState
	prefix   byte  // a CSI's private marker (< = > ?), or 0
	inter    byte  // a CSI's last intermediate byte, or 0
	param    int   // the CSI parameter being read
	params   []int // the CSI's finished parameters
	hasParam bool  // param has a digit
}

// vtState is where termModes' parser is in the output.
type vtState uint8

const (
	vtGround vtState = iota
	vtEscape         // after ESC
	vtEscInt         // after ESC and an intermediate byte (ESC ( B)
	vtCSI            // after ESC [
	vtString         // OSC, DCS, SOS, PM, APC: until BEL, CAN, SUB or ESC
)

// restoredModes are the DEC private modes termModes restores, with their
// state on a fresh terminal, in the order restore turns them back: the
// alternate screen last, so that nothing is drawn on it after it is left.
var restoredModes = []struct {
	mode int
	on   bool // the default
}{
	{1000, false}, {1002, false}, {1003, false}, // mouse reporting
	{1005, false}, {1006, false}, {1015, false}, // mouse encodings
	{1004, false},                             // focus events
	{2004, false},                             // bracketed paste
	{1, false},                                // application cursor keys
	{25, true},                                // cursor visible
	{1049, false}, {1047, false}, {47, false}, // alternate screen
}

// Write passes p on and follows the modes it sets. It reports what the
// terminal took.
func (t *termModes) Write(p []byte) (int, error) {
	for _, c := range p {
		t.step(c)
	}
	return t.w.Write(p)
}

// step advances the parser over one byte.
func (t *termModes) step(c byte) {
	if c == 0x18 || c == 0x1a { // CAN, SUB abort any sequence
		t.state = vtGround
		return
	}
	switch t.state {
	case vtGround:
		if c == 0x1b {
			t.state = vtEscape
		}
	case vtEscape:
		switch {
		case c == '[':
			t.state, t.prefix, t.inter, t.param, t.hasParam = vtCSI, 0, 0, 0, false
			t.params = t.params[:0]
		case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
			t.state = vtString
		case c >= 0x20 && c <= 0x2f:
			t.state = vtEscInt
		case c == 0x1b || c < 0x20:
			// ESC ESC starts again; a C0 control is executed inside it
		default:
			t.state = vtGround
			switch c {
			case '=':
				t.keypad = true
			case '>':
				t.keypad = false
			case 'c': // full reset
				t.reset()
			}
		}
	case vtEscInt:
		if c >= 0x30 && c <= 0x7e {
			t.state = vtGround
		} else if c == 0x1b {
			t.state = vtEscape
		}
	case vtCSI:
		switch {
		case c >= '0' && c <= '9':
			if t.param < 1<<16 {
				t.param = t.param*10 + int(c-'0')
			}
			t.hasParam = true
		case c == ';' || c == ':':
			t.pushParam()
		case c >= 0x3c && c <= 0x3f:
			t.prefix = c
		case c >= 0x20 && c <= 0x2f:
			t.inter = c
		case c >= 0x40 && c <= 0x7e:
			t.pushParam()
			t.state = vtGround
			t.csi(c)
		case c == 0x1b:
			t.state = vtEscape
		}
	case vtString:
		switch c {
		case 0x07:
			t.state = vtGround
		case 0x1b:
			t.state = vtEscape // ESC \ ends the string
		}
	}
}

func (t *termModes) pushParam() {
	if len(t.params) < 16 {
		p := t.param
		if !t.hasParam {
			p = -1 // omitted
		}
		t.params = append(t.params, p)
	}
	t.param, t.hasParam = 0, false
}

// csi handles a complete control sequence with final byte final.
func (t *termModes) csi(final byte) {
	switch {
	case t.prefix == '?' && t.inter == 0 && (final == 'h' || final == 'l'):
		for _, p := range t.params {
			for _, m := range restoredModes {
				if m.mode == p {
					t.setMode(p, (final == 'h') != m.on)
				}
			}
		}
	case t.prefix == 0 && t.inter == 0 && final == 'm':
		t.sgr = false
		for _, p := range t.params {
			if p > 0 {
				t.sgr = true
			}
		}
	case t.prefix == 0 && t.inter == ' ' && final == 'q':
		t.cursorStyle = t.params[0] > 0
	case t.prefix == '>' && t.inter == 0 && final == 'u':
		t.kitty++
	case t.prefix == '<' && t.inter == 0 && final == 'u':
		n := max(t.params[0], 1)
		t.kitty = max(t.kitty-n, 0)
	}
}

// setMode records whether DEC private mode differs from its default.
func (t *termModes) setMode(mode int, changed bool) {
	if !changed {
		delete(t.on, mode)
		return
	}
	if t.on == nil {
		t.on = map[int]bool{}
	}
	t.on[mode] = true
}

// reset is what a full reset does to the state followed.
func (t *termModes) reset() {
	t.on, t.keypad, t.sgr, t.cursorStyle, t.kitty = nil, false, false, false, 0
}

// sequence returns the bytes that take the terminal back from the state
// followed to a fresh terminal's, or nil when there is nothing to undo.
func (t *termModes) sequence() []byte {
	var b []byte
	if t.sgr {
		b = append(b, "\x1b[m"...)
	}
	if t.kitty > 0 {
		b = fmt.Appendf(b, "\x1b[<%du", t.kitty)
	}
	if t.keypad {
		b = append(b, "\x1b>"...)
	}
	if t.cursorStyle {
		b = append(b, "\x1b[0 q"...)
	}
	for _, m := range restoredModes {
		if !t.on[m.mode] {
			continue
		}
		if m.on {
			b = fmt.Appendf(b, "\x1b[?%dh", m.mode)
		} else {
			b = fmt.Appendf(b, "\x1b[?%dl", m.mode)
		}
	}
	return b
}

// restore writes the resets of sequence, once: it leaves the state
// followed at the defaults. A nil t does nothing. An escape sequence the
// output left unfinished is cut short first (CAN), so that the resets are
// not read as its end.
func (t *termModes) restore() {
	if t == nil {
		return
	}
	seq := t.sequence()
	if t.state != vtGround {
		seq = append([]byte{0x18}, seq...)
	}
	t.reset()
	t.state = vtGround
	if len(seq) > 0 {
		_, _ = t.w.Write(seq)
	}
}
