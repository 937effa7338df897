//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// console is the console's output on Windows: it holds the window's size
// (the input side has none), and it renders a session's escape sequences
// only in virtual terminal mode, which makeRaw turns on and restore off.
type console struct {
	out  windows.Handle // stdout when it is a console, else 0
	mode uint32         // out's mode before makeRaw
	raw  bool           // makeRaw changed out's mode
}

// openConsole returns the console that w is, if it is one.
func openConsole(w io.Writer) console {
	f, ok := w.(*os.File)
	if !ok {
		return console{}
	}
	h := windows.Handle(f.Fd())
	var mode uint32
	if windows.GetConsoleMode(h, &mode) != nil {
		return console{}
	}
	return console{out: h}
}

// makeRaw has the console interpret escape sequences, as a terminal does,
// and leave line feeds alone (a session's terminal sends its own carriage
// returns).
func (c *console) makeRaw() error {
	if c.out == 0 {
		return nil
	}
	var mode uint32
	if err := windows.GetConsoleMode(c.out, &mode); err != nil {
		return err
	}
	vt := mode | windows.ENABLE_PROCESSED_OUTPUT | windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING | windows.DISABLE_NEWLINE_AUTO_RETURN
	if err := windows.SetConsoleMode(c.out, vt); err != nil {
		return fmt.Errorf("this console cannot interpret terminal escape sequences (Windows 10 and later can): %w", err)
	}
	c.mode, c.raw = mode, true
	return nil
}

func (c *console) restore() {
	if c.raw {
		_ = windows.SetConsoleMode(c.out, c.mode)
		c.raw = false
	}
}

// sizeFd is the handle that holds the window's size: the console's output,
// or in (which then tells none) when stdout is not the console.
func (c *console) sizeFd(in int) int {
	if c.out == 0 {
		return in
	}
	return int(c.out)
}

// resizePoll is how often attach looks at the window's size: Windows has
// no signal for a change.
const resizePoll = 250 * time.Millisecond

// notifyResize delivers a value whenever the window's size changes, until
// stop is called.
func notifyResize(ctx context.Context, tty *terminal) (_ <-chan os.Signal, stop func()) {
	return pollResizes(ctx, resizePoll, tty.size)
}

// signalNumber is the number of the signal named name ("SIGKILL") where
// every Unix system agrees on it (POSIX's fixed numbers), or 0: the
// session ran on a server elsewhere, and exit statuses of 128+N follow
// its shells.
func signalNumber(name string) int {
	switch name {
	case "SIGHUP":
		return 1
	case "SIGINT":
		return 2
	case "SIGQUIT":
		return 3
	case "SIGILL":
		return 4
	case "SIGTRAP":
		return 5
	case "SIGABRT":
		return 6
	case "SIGKILL":
		return 9
	case "SIGSEGV":
		return 11
	case "SIGPIPE":
		return 13
	case "SIGALRM":
		return 14
	case "SIGTERM":
		return 15
	}
	return 0
}
