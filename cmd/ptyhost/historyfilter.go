package main

import (
	"bytes"
	"slices"
)

// historyFilter keeps the terminal from answering the queries in history:
// the output a replay (or a resume) brings from before this client came,
// up to the hello's (or a reset's) end (docs/protocol.md). The program
// asked them before, and had its answer then; the local terminal, seeing
// them again, would answer them on stdin, and attach would send the
// answers to the program as typed input. So the queries a terminal
// answers are left out of history: device attributes and status, the
// cursor position, mode and setting requests, window reports, color and
// clipboard queries, terminfo requests. Everything else, and all new
// output, passes unchanged. A sequence cut between two frames is held
// back until it ends.
type historyFilter struct {
	off int64 // the offset of the next output byte
	end int64 // where history ends
	// held is an escape sequence begun in history and not ended yet
	// (inSeq), at st.
	held  []byte
	inSeq bool
	st    seqState
	// out is the storage of what filter returns when it has to copy.
	out []byte
}

// seqState is where in an escape sequence the filter is.
type seqState uint8

const (
	seqEsc       seqState = iota // after ESC
	seqCSI                       // in a CSI sequence
	seqString                    // in an OSC or DCS string
	seqStringEsc                 // in a string, after ESC (ST is ESC \)
)

// maxHeldSeq bounds a held sequence: a longer one is no query (those are
// short) and is written as it is.
const maxHeldSeq = 4096

// reset starts history anew: output from off on, history up to end. A
// resume exactly where the output stopped keeps the sequence held back
// (its rest is to come); any other start drops it, with the output it
// belonged to.
func (f *historyFilter) reset(off, end int64) {
	if f.inSeq && off == f.off {
		f.end = max(end, off)
		return
	}
	f.off, f.end = off, max(end, off)
	f.held, f.inSeq = f.held[:0], false
}

// filter returns what of p, the next output, to write to the terminal:
// p itself once history is over, else p without its queries, in storage
// of f's, valid until the next call.
func (f *historyFilter) filter(p []byte) (out []byte) {
	start := f.off
	f.off += int64(len(p))
	if !f.inSeq && start >= f.end {
		return p
	}
	out = f.out[:0]
	defer func() { f.out = out[:0] }() // what the appends grew, for next time
	for i, c := range p {
		if !f.inSeq {
			if start+int64(i) >= f.end {
				return append(out, p[i:]...)
			}
			if c == 0x1b {
				f.held, f.inSeq, f.st = append(f.held[:0], c), true, seqEsc
			} else {
				out = append(out, c)
			}
			continue
		}
		if c == 0x1b && (f.st == seqEsc || f.st == seqCSI) {
			// A new sequence cuts this one short, as in a terminal.
			out = append(out, f.held...)
			f.held, f.st = append(f.held[:0], c), seqEsc
			continue
		}
		f.held = append(f.held, c)
		switch {
		case c == 0x18 || c == 0x1a: // CAN, SUB: the sequence is aborted
			out = f.flush(out, false)
		case f.st == seqEsc:
			switch {
			case c == '[':
				f.st = seqCSI
			case c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X':
				f.st = seqString
			case c >= 0x20 && c <= 0x2f: // intermediates, as in ESC ( B
			default:
				out = f.flush(out, false)
			}
		case f.st == seqCSI:
			if c >= 0x40 && c <= 0x7e {
				out = f.flush(out, isQueryCSI(f.held))
			}
		case f.st == seqString:
			switch c {
			case 0x07:
				out = f.flush(out, isQueryString(f.held))
			case 0x1b:
				f.st = seqStringEsc
			}
		case f.st == seqStringEsc:
			if c == '\\' {
				out = f.flush(out, isQueryString(f.held))
			} else {
				f.st = seqString
			}
		}
		if f.inSeq && len(f.held) > maxHeldSeq {
			out = f.flush(out, false)
		}
	}
	return out
}

// flush ends the held sequence: dropped when it is a query, else written.
func (f *historyFilter) flush(out []byte, query bool) []byte {
	if !query {
		out = append(out, f.held...)
	}
	f.held, f.inSeq = f.held[:0], false
	return out
}

// windowReports are the CSI t that report (the others act on the window).
var windowReports = []string{"11", "13", "14", "15", "16", "18", "19", "20", "21"}

// isQueryCSI reports whether seq, ESC [ ... final, asks the terminal for
// an answer.
func isQueryCSI(seq []byte) bool {
	body := seq[2 : len(seq)-1]
	final := seq[len(seq)-1]
	var prefix byte
	if len(body) > 0 && body[0] >= '<' && body[0] <= '?' {
		prefix, body = body[0], body[1:]
	}
	switch final {
	case 'c': // device attributes: primary, secondary (>), tertiary (=)
		return true
	case 'n': // device status, cursor position (6n, ?6n)
		return prefix == 0 || prefix == '?'
	case 'p': // DECRQM: CSI Ps $ p, CSI ? Ps $ p
		return bytes.HasSuffix(body, []byte("$"))
	case 'q': // XTVERSION: CSI > q
		return prefix == '>'
	case 'u': // the kitty keyboard protocol's flags: CSI ? u
		return prefix == '?'
	case 'm': // XTQMODKEYS: CSI ? Pp m
		return prefix == '?'
	case 't':
		first, _, _ := bytes.Cut(body, []byte(";"))
		return prefix == 0 && slices.Contains(windowReports, string(first))
	}
	return false
}

// isQueryString reports whether seq, an OSC or DCS string with its
// terminator, asks the terminal for an answer: an OSC color or clipboard
// query ("?" for the value), DECRQSS (DCS $ q) or XTGETTCAP (DCS + q).
func isQueryString(seq []byte) bool {
	body := bytes.TrimSuffix(bytes.TrimSuffix(seq[2:], []byte{0x07}), []byte("\x1b\\"))
	switch seq[1] {
	case ']':
		ident, rest, _ := bytes.Cut(body, []byte(";"))
		switch string(ident) {
		case "4", "5", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "52":
			return bytes.Contains(rest, []byte("?"))
		}
	case 'P':
		return bytes.HasPrefix(body, []byte("$q")) || bytes.HasPrefix(body, []byte("+q"))
	}
	return false
}
