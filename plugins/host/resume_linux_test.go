//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

// Tests through the real server binary and the real host plugin binary of
// issue 10's byte-exact output: a client resumes at an exact offset, and a
// lone client that keeps reading receives every byte of a flood.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// dialAt attaches to session id resuming at off (none when off < 0).
func dialAt(t *testing.T, srv *e2etest.Server, id string, off int64) *wsproto.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	o := wsproto.DialOptions{Token: srv.Token, ReadLimit: -1}
	if off >= 0 {
		o.Offset = &off
	}
	c, err := wsproto.Dial(ctx, srv.AttachURL(id), o)
	if err != nil {
		t.Fatalf("attach %s at %d: %v", id, off, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// received is what a client got: its output, and the control messages
// after the hello.
type received struct {
	out     []byte
	control []wsproto.Message
}

// readUntil reads from c into r until the output ends with (or, when
// contains is set, holds) want, calling pause after each output frame.
// Reading fails the test after within.
func (r *received) readUntil(t *testing.T, c *wsproto.Conn, want string, within time.Duration, pause func(n int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !bytes.Contains(r.out[max(0, len(r.out)-len(want)-4096):], []byte(want)) {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %q after %d bytes (tail %q), control %+v: %v",
				want, len(r.out), e2etest.Tail(r.out, 200), r.control, err)
		}
		if f.Kind == wsproto.FrameOutput {
			r.out = append(r.out, f.Data...)
			if pause != nil {
				pause(len(r.out))
			}
			continue
		}
		r.control = append(r.control, f.Msg)
	}
}

// seqOutput is what `seq from to` prints on a terminal (onlcr).
func seqOutput(from, to int) []byte {
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func TestResumeAtOffset(t *testing.T) {
	srv := startTestServer(t, false)
	dir := t.TempDir()
	printed := filepath.Join(dir, "printed")
	// The second half is printed while no client is attached; the file
	// says it has been.
	id := createSession(t, srv, "sh", "-c",
		"stty -echo; seq 1 25000; read x; seq 25001 50000; touch "+printed+"; exec sleep 600")
	want := append(seqOutput(1, 25000), seqOutput(25001, 50000)...)

	c := dialAt(t, srv, id, -1)
	if h := c.Hello(); h.Offset != 0 {
		t.Fatalf("first hello offset %d, want 0", h.Offset)
	}
	var first received
	first.readUntil(t, c, "\r\n25000\r\n", 30*time.Second, nil)
	if !bytes.Equal(first.out, want[:len(first.out)]) {
		t.Fatalf("first client got %d bytes that are not the program's output", len(first.out))
	}
	// The client keeps only up to N, in the middle of a line: it resumes
	// from a byte that is no safe point.
	n := int64(120001)
	if err := c.Input(t.Context(), []byte("x\r")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWith(wsproto.CloseNormal, "detached"); err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, 30*time.Second, "the second half printed", func() bool {
		_, err := os.Stat(printed)
		return err == nil
	}, nil)

	// N is in the ring (256 KiB of the 339 KB): exactly the bytes from N.
	c2 := dialAt(t, srv, id, n)
	if h := c2.Hello(); h.Offset != n {
		t.Fatalf("resumed hello offset %d, want %d", h.Offset, n)
	}
	var second received
	second.readUntil(t, c2, "\r\n50000\r\n", 30*time.Second, nil)
	got := append(first.out[:n:n], second.out...)
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("resumed output differs at byte %d of %d (want %d): got %q, want %q",
			i, len(got), len(want), e2etest.Tail(got[:min(len(got), i+20)], 40), e2etest.Tail(want[:min(len(want), i+20)], 40))
	}
	if len(second.control) != 0 {
		t.Errorf("resumed client got control messages %+v, want none", second.control)
	}
	if c2.Offset() != int64(len(want)) {
		t.Errorf("client's Offset %d, want %d", c2.Offset(), len(want))
	}

	// Offsets the ring no longer holds, or that were never written: reset,
	// then the replay from a safe point (a line start here).
	for _, off := range []int64{10, int64(len(want)) + 1000} {
		c3 := dialAt(t, srv, id, off)
		var r received
		r.readUntil(t, c3, "\r\n50000\r\n", 30*time.Second, nil)
		if len(r.control) == 0 || r.control[0].Type != wsproto.TypeReset {
			t.Fatalf("offset %d: control messages %+v, want a reset first", off, r.control)
		}
		at := r.control[0].Offset
		if h := c3.Hello(); h.Offset != at {
			t.Errorf("offset %d: hello offset %d, reset offset %d: want the same", off, h.Offset, at)
		}
		if at <= int64(len(want))-256<<10 || at >= int64(len(want)) || want[at-1] != '\n' {
			t.Errorf("offset %d: reset to %d, want a line start within the last 256 KiB of %d", off, at, len(want))
		}
		if at < int64(len(want)) && !bytes.Equal(r.out, want[at:]) {
			t.Errorf("offset %d: replay of %d bytes is not the output from %d", off, len(r.out), at)
		}
	}
}

func TestAttachOffsetRejected(t *testing.T) {
	srv := startTestServer(t, false)
	id := createSession(t, srv, "sleep", "600")
	for _, q := range []string{"-1", "x", "", "1.5"} {
		code, body, err := srv.Do("GET", wsproto.AttachPath(id)+"?offset="+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := body["error"].(string)
		if code != 400 || !strings.Contains(msg, "offset") {
			t.Errorf("offset=%q: %d %v, want 400 naming the offset", q, code, body)
		}
	}
}

// floodCommand prints n bytes of base64 (no newline: n is a multiple of
// 4), then a line with the SHA-256 of them, then sleeps.
func floodCommand(dir string, n int) []string {
	f := filepath.Join(dir, "flood")
	return []string{"sh", "-c", fmt.Sprintf(
		"head -c %d /dev/urandom | base64 -w 0 > %s && cat %s && printf '\\nSUM ' && sha256sum < %s && exec sleep 600",
		n/4*3, f, f, f)}
}

// checkFlood checks out, a client's output of floodCommand: n bytes whose
// checksum the line after them names.
func checkFlood(t *testing.T, who string, out []byte, n int) {
	t.Helper()
	data, sum, ok := bytes.Cut(out, []byte("\r\nSUM "))
	if !ok {
		t.Fatalf("%s: no checksum line in %d bytes", who, len(out))
	}
	got := sha256.Sum256(data)
	if len(data) != n || !bytes.HasPrefix(sum, []byte(hex.EncodeToString(got[:]))) {
		t.Errorf("%s: received %d bytes of %d, checksum %.64s, program's %.64s", who, len(data), n, hex.EncodeToString(got[:]), sum)
	}
}

func TestLoneSlowClientReceivesEveryByte(t *testing.T) {
	srv := startTestServer(t, false) // the default scrollback, 256 KiB
	const size = 256 << 20
	c := dialAt(t, srv, createSession(t, srv, floodCommand(t.TempDir(), size)...), -1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The flood is hashed as it arrives rather than kept: 256 MiB held
	// twice over (the append's growth) under the race detector is more
	// than a CI machine should need.
	h := sha256.New()
	var (
		n, next int
		tail    []byte // received, not yet hashed: may start the SUM line
		sum     []byte // the bytes after the SUM marker
		start   = time.Now()
	)
	marker := []byte("\r\nSUM ")
	for len(sum) < 64 {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d bytes (tail %q): %v", n, e2etest.Tail(tail, 100), err)
		}
		if f.Kind != wsproto.FrameOutput {
			if f.Msg.Type == wsproto.TypeReset {
				t.Fatalf("the lone client was reset after %d bytes: %+v", n, f.Msg)
			}
			continue
		}
		if sum != nil {
			sum = append(sum, f.Data...)
			continue
		}
		tail = append(tail, f.Data...)
		if data, rest, ok := bytes.Cut(tail, marker); ok {
			h.Write(data)
			n += len(data)
			sum = append([]byte{}, rest...)
			continue
		}
		// Keep back what could be the start of the marker.
		keep := min(len(tail), len(marker)-1)
		h.Write(tail[:len(tail)-keep])
		n += len(tail) - keep
		tail = append(tail[:0], tail[len(tail)-keep:]...)
		// Slower than the program: a pause every MiB.
		if n >= next {
			next += 1 << 20
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("%d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
	if got := hex.EncodeToString(h.Sum(nil)); n != size || !bytes.HasPrefix(sum, []byte(got)) {
		t.Errorf("received %d bytes of %d, checksum %s, program's %.64s", n, size, got, sum)
	}
}

func TestStalledClientIsResetOthersGetEverything(t *testing.T) {
	srv := startTestServer(t, false)
	const size = 16 << 20
	// First a prefix larger than what the kernel buffers for a client that
	// does not read (its socket's send buffer grows to 4 MiB), then the
	// program waits for a line: by then the stalled client can take
	// nothing more, and the live one is the fastest for sure. Before, the
	// stalled client's buffers were filling while the flood ran, and it
	// was the faster of the two for a while.
	f := filepath.Join(t.TempDir(), "flood")
	id := createSession(t, srv, "sh", "-c", fmt.Sprintf(
		"head -c %d /dev/urandom | base64 -w 0 > %s && head -c %d /dev/zero | tr '\\0' . && echo && echo READY && read go && "+
			"echo BEGIN && cat %s && printf '\\nSUM ' && sha256sum < %s && exec sleep 600",
		size/4*3, f, 8<<20, f, f))
	stalled := dialAt(t, srv, id, -1) // reads nothing until the live one is done
	live := dialAt(t, srv, id, -1)
	var prefix received
	prefix.readUntil(t, live, "READY\r\n", 60*time.Second, nil)
	if err := live.Input(t.Context(), []byte("go\r")); err != nil {
		t.Fatal(err)
	}
	var r received
	r.readUntil(t, live, "  -\r\n", 60*time.Second, nil)
	_, flood, ok := bytes.Cut(r.out, []byte("BEGIN\r\n"))
	if !ok {
		t.Fatalf("no BEGIN line in the live client's %d bytes", len(r.out))
	}
	checkFlood(t, "live client", flood, size)
	for _, m := range r.control {
		if m.Type == wsproto.TypeReset {
			t.Fatalf("the live client was reset during the flood: %+v", m)
		}
	}
	var st received
	st.readUntil(t, stalled, "  -\r\n", 60*time.Second, nil)
	reset := false
	for _, m := range st.control {
		reset = reset || m.Type == wsproto.TypeReset
	}
	if !reset || len(st.out) >= size {
		t.Errorf("stalled client got %d bytes and control messages %+v, want a reset and less than the output", len(st.out), st.control)
	}
}
