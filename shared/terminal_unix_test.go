//go:build unix

package shared

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	xterm "golang.org/x/term"
)

// A flood read through Terminal.Read, which goes on reading what is ready
// after a large read (gather), arrives whole and in order, and a
// keystroke's echo after it on its own.
func TestTerminalReadFlood(t *testing.T) {
	term, tty, err := OpenTerminal(Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	defer tty.Close()

	// 1 MiB in 1 KiB writes, each numbered; no newline to translate.
	var flood []byte
	for i := 0; len(flood) < 1<<20; i++ {
		chunk := fmt.Appendf(nil, "[%08d]", i)
		flood = append(flood, bytes.Repeat(chunk, 1024/len(chunk)+1)[:1024]...)
	}
	wrote := make(chan error, 1)
	go func() {
		for off := 0; off < len(flood); off += 1024 {
			if _, err := tty.Write(flood[off : off+1024]); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	var got []byte
	buf := make([]byte, 64<<10)
	for len(got) < len(flood) {
		n, err := term.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, flood) {
		i := 0
		for i < len(got) && got[i] == flood[i] {
			i++
		}
		t.Fatalf("read %d bytes, differing from the %d written at %d", len(got), len(flood), i)
	}

	if _, err := tty.Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if n, err := term.Read(buf); err != nil || string(buf[:n]) != "k" {
		t.Fatalf("Read after the flood: %q, %v; want k", buf[:n], err)
	}
}

// NewTerminal takes a master opened elsewhere, and refuses anything else:
// a pipe, and the terminal's other side.
func TestNewTerminal(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	term, err := NewTerminal(master)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if _, err := tty.WriteString("handed over"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := term.Read(buf); err != nil || string(buf[:n]) != "handed over" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
	if err := term.Resize(Size{Cols: 100, Rows: 30}); err != nil {
		t.Errorf("Resize: %v", err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	otherMaster, other, err := OpenPTY(Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer otherMaster.Close()
	for name, f := range map[string]*os.File{"pipe": r, "the terminal's side": other} {
		if _, err := NewTerminal(f); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s: left open after the refusal (Close: %v)", name, err)
		}
	}
}

// A Write blocked on a terminal nobody reads returns ErrChildExited once
// the child exited (ChildExited), and every later Write at once.
func TestTerminalWriteAfterChildExited(t *testing.T) {
	term, tty, err := OpenTerminal(Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	defer tty.Close()
	// Raw, as a program that reads no input has it: in canonical mode the
	// terminal drops what a full line buffer cannot hold instead.
	if _, err := xterm.MakeRaw(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}

	wrote := make(chan error, 1)
	go func() {
		_, err := term.Write(make([]byte, 4<<20)) // more than the terminal holds
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("Write returned %v while nothing read the terminal", err)
	case <-time.After(200 * time.Millisecond):
	}
	term.ChildExited()
	select {
	case err := <-wrote:
		if !errors.Is(err, ErrChildExited) {
			t.Fatalf("the blocked Write: %v, want ErrChildExited", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked Write did not return after ChildExited")
	}
	if _, err := term.Write([]byte("x")); !errors.Is(err, ErrChildExited) {
		t.Errorf("a later Write: %v, want ErrChildExited", err)
	}
}
