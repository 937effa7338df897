//go:build unix

package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// console is empty on Unix: stdin, the terminal, holds its size, and its
// output renders escape sequences as it is.
type console struct{}

func openConsole(io.Writer) console { return console{} }

func (console) makeRaw() error { return nil }

func (console) restore() {}

// sizeFd is the descriptor that holds the terminal's size: stdin's (in).
func (console) sizeFd(in int) int { return in }

// notifyResize delivers SIGWINCH, the kernel's word that the terminal
// changed size, until stop is called.
func notifyResize(context.Context, *terminal) (_ <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	return ch, func() { signal.Stop(ch) }
}

// signalNumber is the number of the signal named name ("SIGKILL"), or 0.
func signalNumber(name string) int { return int(unix.SignalNum(name)) }
