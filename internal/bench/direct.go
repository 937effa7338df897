package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// readBufSize is the read size of the direct baseline: the plugin reads
// the PTY in frames of this size too (shared.MaxFrameSize).
const readBufSize = 64 << 10

// directPTY is the generator on a PTY that the bench reads itself.
type directPTY struct {
	cmd    *exec.Cmd
	proc   *os.Process
	ptmx   *os.File
	stop   func() bool // unregisters the context's cleanup
	waited bool
}

// startDirect starts the generator with args on an 80x24 PTY and waits
// until it has announced raw mode. The context ending kills it.
func startDirect(ctx context.Context, gen string, args ...string) (*directPTY, error) {
	cmd := exec.Command(gen, args...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		return nil, fmt.Errorf("starting the generator on a PTY: %w", err)
	}
	d := &directPTY{cmd: cmd, proc: cmd.Process, ptmx: ptmx}
	d.stop = context.AfterFunc(ctx, d.kill)
	got := make([]byte, len(ready))
	if _, err := io.ReadFull(ptmx, got); err != nil {
		d.close()
		return nil, fmt.Errorf("waiting for the generator: %w", err)
	}
	if string(got) != ready {
		d.close()
		return nil, fmt.Errorf("the generator said %q, want %q", got, ready)
	}
	return d, nil
}

// kill ends the generator; safe at any time, from any goroutine.
func (d *directPTY) kill() {
	_ = d.proc.Kill()
	_ = d.ptmx.Close()
}

// wait waits for the generator to exit and checks that it succeeded.
func (d *directPTY) wait() error {
	d.waited = true
	return d.cmd.Wait()
}

// close kills the generator if it still runs and releases everything.
func (d *directPTY) close() {
	d.stop()
	if !d.waited {
		_ = d.proc.Kill()
		_ = d.cmd.Wait()
	}
	_ = d.ptmx.Close()
}

// isPTYEnd reports whether err from reading a PTY master means that the
// other side is gone: Linux says EIO.
func isPTYEnd(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, io.EOF)
}

// directFlood runs `gen flood n` on a PTY it reads itself: the baseline.
func directFlood(ctx context.Context, gen string, n int64) (floodResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	d, err := startDirect(ctx, gen, "flood", strconv.FormatInt(n, 10))
	if err != nil {
		return floodResult{}, err
	}
	defer d.close()

	buf := make([]byte, readBufSize)
	var c clientResult
	cpu0 := selfCPU()
	start := time.Now()
	if _, err := d.ptmx.Write([]byte("g")); err != nil {
		return floodResult{}, err
	}
	var last time.Time
	for {
		k, err := d.ptmx.Read(buf)
		if k > 0 {
			c.Bytes += int64(k)
			c.Reads++
			last = time.Now()
		}
		if err != nil {
			if ctx.Err() != nil {
				return floodResult{}, ctx.Err()
			}
			if !isPTYEnd(err) {
				return floodResult{}, err
			}
			break
		}
	}
	cpu := selfCPU() - cpu0
	if err := d.wait(); err != nil {
		return floodResult{}, fmt.Errorf("generator: %w", err)
	}
	c.finish(start, last)
	want := n - int64(len(ready))
	if c.Bytes != want {
		return floodResult{}, fmt.Errorf("read %d bytes from the PTY, want %d", c.Bytes, want)
	}
	f := newFloodResult(want, []clientResult{c})
	f.ReaderCPU = cpu
	return f, nil
}

// echoKey returns the i-th keystroke of an echo run: never the generator's
// quit byte.
func echoKey(i int) byte { return "abcdefghijklmnop"[i%16] }

// directEcho types keys keystrokes, one at a time, into `gen echo` on a PTY
// it reads itself, and times each round trip.
func directEcho(ctx context.Context, gen string, keys int) (echoResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	d, err := startDirect(ctx, gen, "echo")
	if err != nil {
		return echoResult{}, err
	}
	defer d.close()

	buf := make([]byte, 256)
	lat := make([]time.Duration, 0, keys)
	for i := range warmupKeys + keys {
		key := []byte{echoKey(i)}
		t0 := time.Now()
		if _, err := d.ptmx.Write(key); err != nil {
			return echoResult{}, err
		}
		k, err := d.ptmx.Read(buf)
		dt := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return echoResult{}, ctx.Err()
			}
			return echoResult{}, err
		}
		if !bytes.Equal(buf[:k], key) {
			return echoResult{}, fmt.Errorf("keystroke %d: sent %q, got %q back", i, key, buf[:k])
		}
		if i >= warmupKeys {
			lat = append(lat, dt)
		}
	}
	if _, err := d.ptmx.Write([]byte("q")); err != nil {
		return echoResult{}, err
	}
	if err := d.wait(); err != nil {
		return echoResult{}, fmt.Errorf("generator: %w", err)
	}
	return newEchoResult(lat), nil
}
