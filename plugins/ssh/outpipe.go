package main

import (
	"io"
	"sync"
)

// outPipe carries a session's output from x/crypto's copying goroutines
// (the channel's data and extended data) to Read. Unlike io.Pipe, a
// Write does not wait for a Read to take its bytes: it appends them to a
// buffer and returns, waiting only while outPipeLimit bytes are unread
// (so a host that does not read still slows the remote program, through
// the channel's window). A Read takes everything there, up to its
// buffer's size. A flood thus crosses between the goroutines once per
// many packets, in large pieces, rather than twice per packet.
type outPipe struct {
	// wmu keeps a Write whole, as io.Pipe does: the channel's data and
	// extended data do not interleave within one.
	wmu  sync.Mutex
	mu   sync.Mutex
	cond sync.Cond // signalled on every change; both sides wait on it
	// mu protects the following.
	buf    []byte // written, not yet read: buf[off:]
	off    int
	bufp   *[]byte // where buf came from (pipeBuffers); nil with buf
	werr   error   // set by closeWrite: Read returns it once buf is empty
	rerr   error   // set by closeRead: both sides return it at once
	closed bool    // werr is set
}

// outPipeLimit is how many unread bytes make Write wait: two of sshd's
// largest packets.
const outPipeLimit = 64 << 10

// pipeBuffers holds the buffers of pipes that are empty: a pipe takes one
// at its first Write after it emptied and gives it back when a Read
// empties it, so an idle session holds none, and a flood, which empties
// and fills the pipe over and over, allocates none.
var pipeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, outPipeLimit)
	return &b
}}

func newOutPipe() *outPipe {
	p := &outPipe{}
	p.cond.L = &p.mu
	return p
}

// Write appends b. It fails with the pipe's error once either side was
// closed.
func (p *outPipe) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.rerr == nil && !p.closed && len(p.buf)-p.off >= outPipeLimit {
			p.cond.Wait()
		}
		switch {
		case p.rerr != nil:
			return written, p.rerr
		case p.closed:
			return written, io.ErrClosedPipe
		}
		n := min(len(b), outPipeLimit-(len(p.buf)-p.off))
		if p.bufp == nil {
			p.bufp = pipeBuffers.Get().(*[]byte)
			p.buf = (*p.bufp)[:0]
		}
		if p.off > 0 && cap(p.buf)-len(p.buf) < n {
			// Move the unread bytes to the front rather than grow.
			m := copy(p.buf, p.buf[p.off:])
			p.buf, p.off = p.buf[:m], 0
		}
		p.buf = append(p.buf, b[:n]...)
		b = b[n:]
		written += n
		p.cond.Broadcast()
	}
	return written, nil
}

// Read takes what is there, up to len(b), waiting for a Write if nothing
// is. Once the writing side is closed and everything is read it returns
// the close's error (io.EOF), and after closeRead that one's.
func (p *outPipe) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.rerr == nil && !p.closed && p.off == len(p.buf) {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.off == len(p.buf) {
		return 0, p.werr
	}
	n := copy(b, p.buf[p.off:])
	p.off += n
	if p.off == len(p.buf) {
		p.release()
	}
	p.cond.Broadcast()
	return n, nil
}

// closeWrite ends the output: Read returns what is left, then err (io.EOF
// if nil). Later calls do nothing.
func (p *outPipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed, p.werr = true, err
		p.cond.Broadcast()
	}
}

// closeRead ends the pipe at once: Read and Write return err from now on,
// whatever is left unread. Later calls do nothing.
func (p *outPipe) closeRead(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
		p.release()
		p.cond.Broadcast()
	}
}

// release gives the buffer back to pipeBuffers. p.mu must be held.
func (p *outPipe) release() {
	if p.bufp != nil {
		*p.bufp = p.buf[:0]
		pipeBuffers.Put(p.bufp)
	}
	p.buf, p.bufp, p.off = nil, nil, 0
}
