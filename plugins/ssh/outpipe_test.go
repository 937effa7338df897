package main

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestOutPipeCarriesEverything: two writers' bytes all arrive, each
// Write whole, through reads of varying sizes, and the buffer stays
// bounded while the reader lags.
func TestOutPipeCarriesEverything(t *testing.T) {
	p := newOutPipe()
	const chunks = 400
	mk := func(tag byte, i int) []byte {
		b := bytes.Repeat([]byte{tag}, 2+(i*7919)%20000)
		b[len(b)-1] = '\n'
		return b
	}
	var want [2][]byte
	done := make(chan struct{})
	for w, tag := range []byte{'a', 'b'} {
		for i := range chunks {
			want[w] = append(want[w], mk(tag, i)...)
		}
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range chunks {
				if _, err := p.Write(mk(tag, i)); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	go func() {
		<-done
		<-done
		p.closeWrite(nil)
	}()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := p.Read(buf[:1+rand.IntN(len(buf))])
		got = append(got, buf[:n]...)
		p.mu.Lock()
		if p.buf != nil && p.buf.Cap() > 3*outPipeLimit {
			t.Fatalf("buffer grew to %d bytes, past 3 × %d", p.buf.Cap(), outPipeLimit)
		}
		p.mu.Unlock()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Split the stream by writer, keeping each Write whole: a line of one
	// tag never has the other's bytes in it.
	var sep [2][]byte
	for _, line := range bytes.SplitAfter(got, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		w := 0
		if line[0] == 'b' {
			w = 1
		}
		if bytes.IndexByte(line[:len(line)-1], "ab"[1-w]) >= 0 {
			t.Fatalf("a write was split by the other writer's bytes")
		}
		sep[w] = append(sep[w], line...)
	}
	for w := range sep {
		if md5.Sum(sep[w]) != md5.Sum(want[w]) {
			t.Errorf("writer %d: got %d bytes, want %d, or in another order", w, len(sep[w]), len(want[w]))
		}
	}
}

// TestOutPipeWaitsForTheReader: a Write past the limit waits until the
// reader makes room, so a host that does not read slows the program.
func TestOutPipeWaitsForTheReader(t *testing.T) {
	p := newOutPipe()
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, outPipeLimit+1))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("a write past the limit returned (%v) before anything was read", err)
	case <-time.After(100 * time.Millisecond):
	}
	buf := make([]byte, 100)
	if n, err := p.Read(buf); n != 100 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestOutPipeClose: closeWrite lets the reader take what is left before
// its error; closeRead ends both sides at once with its error, a Write
// waiting for room too.
func TestOutPipeClose(t *testing.T) {
	p := newOutPipe()
	p.Write([]byte("left"))
	p.closeWrite(nil)
	buf := make([]byte, 10)
	if n, err := p.Read(buf); string(buf[:n]) != "left" || err != nil {
		t.Fatalf("read %q, %v; want the bytes left", buf[:n], err)
	}
	if _, err := p.Read(buf); err != io.EOF {
		t.Fatalf("read after the end: %v, want io.EOF", err)
	}
	// An emptied pipe holds no buffer.
	p = newOutPipe()
	p.Write(make([]byte, 10000))
	if n, _ := p.Read(make([]byte, 20000)); n != 10000 || p.buf != nil {
		t.Fatalf("read %d; buffer held after the pipe emptied: %v", n, p.buf != nil)
	}

	p = newOutPipe()
	stop := errors.New("stop")
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 2*outPipeLimit))
		wrote <- err
	}()
	time.Sleep(20 * time.Millisecond)
	p.closeRead(stop)
	if err := <-wrote; !errors.Is(err, stop) {
		t.Fatalf("waiting write: %v, want %v", err, stop)
	}
	if _, err := p.Read(buf); !errors.Is(err, stop) {
		t.Fatalf("read after closeRead: %v, want %v", err, stop)
	}
	// A blocked Read returns at closeRead too.
	p = newOutPipe()
	read := make(chan error, 1)
	go func() {
		_, err := p.Read(buf)
		read <- err
	}()
	time.Sleep(20 * time.Millisecond)
	p.closeRead(stop)
	if err := <-read; !errors.Is(err, stop) {
		t.Fatalf("blocked read: %v, want %v", err, stop)
	}
}

// TestWireConnReadsAhead: small reads are served from one large read of
// the connection, every byte arrives in order, the error comes after the
// bytes read with it, and is remembered for readErr.
func TestWireConnReadsAhead(t *testing.T) {
	a, b := net.Pipe()
	counted := &countingConn{Conn: a}
	w := newWireConn(counted)
	want := make([]byte, 3*wireReadAhead+123)
	for i := range want {
		want[i] = byte(i * 31)
	}
	go func() {
		b.Write(want)
		b.Close()
	}()
	var got []byte
	buf := make([]byte, 5)
	for {
		n, err := w.Read(buf[:1+len(got)%len(buf)])
		got = append(got, buf[:n]...)
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d in order", len(got), len(want))
	}
	// net.Pipe hands over at most one Write per Read: 4 reads of data,
	// and one for the end, against ~65,000 reads of 1 to 5 bytes.
	if counted.reads > 10 {
		t.Errorf("%d reads of the connection, want a few", counted.reads)
	}
	if err := w.readErr(); err != io.EOF {
		t.Errorf("readErr: %v, want io.EOF", err)
	}
	// A read larger than the read-ahead goes straight to the connection,
	// with the reader's own buffer.
	c, d := net.Pipe()
	sized := &countingConn{Conn: c}
	w = newWireConn(sized)
	go d.Write([]byte("direct"))
	big := make([]byte, 2*wireReadAhead)
	if n, err := w.Read(big); string(big[:n]) != "direct" || err != nil || sized.last != len(big) {
		t.Errorf("large read: %q, %v, the connection read into %d bytes, want the reader's %d", big[:n], err, sized.last, len(big))
	}
	c.Close()
	d.Close()
}

type countingConn struct {
	net.Conn
	reads int
	last  int // the size of the last read's buffer
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	c.last = len(p)
	return c.Conn.Read(p)
}
