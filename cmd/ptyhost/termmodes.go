package main

import (
	"fmt"
	"io"
)

// The local terminal's modes, which attach follows in the session's output
// so that it can turn back what the session turned on when it leaves.

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
