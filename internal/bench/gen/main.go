// Command gen is the child program of `make bench` (internal/bench). It runs
// on a pseudo-terminal, either directly under the bench or inside a ptyhost
// session, and produces the same bytes in both cases.
//
//	gen flood BYTES   write BYTES bytes of terminal output after a go byte
//	gen echo          write every byte read straight back, until 'q'
//	gen fill BYTES    write BYTES bytes of terminal output at once, then
//	                  wait, writing nothing, until 'q' or the end of input
//	gen trickle MS [BYTES]
//	                  write BYTES bytes of output at once (none if absent),
//	                  then one line every MS milliseconds, until 'q' or the
//	                  end of input
//
// Both modes put the terminal into raw mode first (no echo, no line
// buffering, no output processing, so every byte arrives and leaves as it
// is) and then write Ready, which tells the bench that input is now safe to
// send. In flood mode Ready counts towards BYTES: the program writes exactly
// BYTES bytes in all.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"
)

// Ready is the first thing gen writes, once its terminal is in raw mode.
// internal/bench keeps a copy of it.
const Ready = "\x1b[0mptyhost-bench ready\r\n"

const (
	// writeSize is the size of each output write in flood mode.
	writeSize = 32 << 10
	// patternSize is roughly how much distinct output flood mode cycles
	// through.
	patternSize = 1 << 20
	// quit ends echo mode.
	quit = 'q'
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usageLine)
	}
	switch {
	case args[0] == "flood" && len(args) == 2:
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || n < int64(len(Ready)) {
			return fmt.Errorf("flood: BYTES must be an integer >= %d, got %q", len(Ready), args[1])
		}
		return flood(n)
	case args[0] == "echo" && len(args) == 1:
		return echo()
	case args[0] == "fill" && len(args) == 2:
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || n < int64(len(Ready)) {
			return fmt.Errorf("fill: BYTES must be an integer >= %d, got %q", len(Ready), args[1])
		}
		return fill(n)
	case args[0] == "trickle" && (len(args) == 2 || len(args) == 3):
		ms, err := strconv.Atoi(args[1])
		if err != nil || ms < 1 {
			return fmt.Errorf("trickle: MS must be a whole number of milliseconds >= 1, got %q", args[1])
		}
		var first int64
		if len(args) == 3 {
			if first, err = strconv.ParseInt(args[2], 10, 64); err != nil || first < 0 {
				return fmt.Errorf("trickle: BYTES must be an integer >= 0, got %q", args[2])
			}
		}
		return trickle(time.Duration(ms)*time.Millisecond, first)
	}
	return errors.New(usageLine)
}

const usageLine = "usage: gen flood BYTES | gen echo | gen fill BYTES | gen trickle MS [BYTES]"

// ready puts the terminal on stdin into raw mode and announces it. The
// terminal is not restored: the program exits soon, and nobody reads the
// terminal after that.
func ready() error {
	if _, err := term.MakeRaw(int(os.Stdin.Fd())); err != nil {
		return fmt.Errorf("raw mode: %w", err)
	}
	_, err := io.WriteString(os.Stdout, Ready)
	return err
}

// flood waits for one byte of input, then writes total bytes in all
// (counting Ready) in writeSize writes.
func flood(total int64) error {
	out := pattern()
	if err := ready(); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(os.Stdin, b[:]); err != nil {
		return fmt.Errorf("waiting for the go byte: %w", err)
	}
	left := total - int64(len(Ready))
	period := len(out) - writeSize // out[period:] repeats out[:writeSize]
	at := 0
	for left > 0 {
		n := int(min(left, writeSize))
		if _, err := os.Stdout.Write(out[at : at+n]); err != nil {
			return err
		}
		left -= int64(n)
		at = (at + n) % period
	}
	return nil
}

// fill writes total bytes in all (counting Ready) at once, without a go
// byte, then waits until quit or the end of input: a session whose
// scrollback holds exactly known output and that then stays quiet.
func fill(total int64) error {
	out := pattern()
	if err := ready(); err != nil {
		return err
	}
	left := total - int64(len(Ready))
	period := len(out) - writeSize
	at := 0
	for left > 0 {
		n := int(min(left, writeSize))
		if _, err := os.Stdout.Write(out[at : at+n]); err != nil {
			return err
		}
		left -= int64(n)
		at = (at + n) % period
	}
	waitQuit()
	return nil
}

// trickle writes one line of the pattern every interval until quit or
// the end of input: a session with periodic output. First, it writes
// first bytes at once: the soak fills the session's scrollback so that its
// memory is warm from the start.
func trickle(interval time.Duration, first int64) error {
	out := pattern()
	if err := ready(); err != nil {
		return err
	}
	for at := 0; first > 0; at = (at + writeSize) % (len(out) - writeSize) {
		n := int(min(first, writeSize))
		if _, err := os.Stdout.Write(out[at : at+n]); err != nil {
			return err
		}
		first -= int64(n)
	}
	done := make(chan struct{})
	go func() {
		waitQuit()
		close(done)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	at := 0
	for {
		select {
		case <-done:
			return nil
		case <-t.C:
		}
		end := at + bytes.Index(out[at:], []byte("\r\n")) + 2
		if _, err := os.Stdout.Write(out[at:end]); err != nil {
			return err
		}
		at = end
		if at >= len(out)-writeSize {
			at = 0
		}
	}
}

// waitQuit reads input until quit or its end.
func waitQuit() {
	buf := make([]byte, 256)
	for {
		n, err := os.Stdin.Read(buf)
		if strings.IndexByte(string(buf[:n]), quit) >= 0 || err != nil {
			return
		}
	}
}

// echo writes back every byte it reads until it reads quit.
func echo() error {
	if err := ready(); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			p := buf[:n]
			i := strings.IndexByte(string(p), quit)
			if i >= 0 {
				p = p[:i]
			}
			if _, werr := os.Stdout.Write(p); werr != nil {
				return werr
			}
			if i >= 0 {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// Pieces of realistic output: compiler and test-runner lines, coloured
// with SGR escapes, with some multibyte UTF-8.
var (
	words = []string{
		"build", "ok", "github.com/ptyhost/ptyhost/core", "main.go:42:7", "--- PASS:",
		"TestSession", "(0.01s)", "error:", "warning:", "undefined:", "func", "return",
		"if", "err", "!=", "nil", "{", "}", "0x7f3a2c", "12.5ms", "GET", "/api/v1/sessions",
		"200", "INFO", "DEBUG", "session_id=k3J9xq", "bytes=65536", "=>", "|", "--",
	}
	multibyte = []string{"é", "ü", "→", "✓", "✗", "…", "日本語", "░▒▓", "λ", "─┼─", "🙂"}
	sgr       = []string{"\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1;34m", "\x1b[38;5;208m", "\x1b[2m", "\x1b[7m"}
)

const reset = "\x1b[0m"

// pattern returns about patternSize bytes of lines, each at most 80
// columns and ending in CR LF, followed by a copy of its first writeSize
// bytes, so that any writeSize window starting before the copy is
// contiguous. It is the same on every run.
func pattern() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.Grow(patternSize + 256)
	for b.Len() < patternSize {
		cols := 0
		width := 20 + rng.IntN(61) // 20..80 columns
		for cols < width {
			var w string
			var wc int
			switch r := rng.IntN(20); {
			case r < 2:
				w = multibyte[rng.IntN(len(multibyte))]
				wc = len([]rune(w))
			default:
				w = words[rng.IntN(len(words))]
				wc = len(w)
			}
			if cols+wc+1 > width {
				break
			}
			if cols > 0 {
				b.WriteByte(' ')
				cols++
			}
			colour := rng.IntN(6) == 0
			if colour {
				b.WriteString(sgr[rng.IntN(len(sgr))])
			}
			b.WriteString(w)
			if colour {
				b.WriteString(reset)
			}
			cols += wc
		}
		b.WriteString("\r\n")
	}
	s := b.String()
	return []byte(s + s[:writeSize])
}
