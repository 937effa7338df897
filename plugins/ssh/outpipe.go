package main

import (
	"bytes"
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
	buf  *bytes.Buffer // written, not yet read; nil while empty
	werr error         // set by closeWrite: Read returns it once buf is empty
	rerr error         // set by closeRead: both sides return it at once
}

// outPipeLimit is how many unread bytes make Write wait: two of sshd's
// largest packets.
const outPipeLimit = 64 << 10

// pipeBuffers holds the buffers of pipes that are empty: a pipe takes one
// at its first Write after it emptied and gives it back when a Read
// empties it, so an idle session holds none, and a flood, which empties
// and fills the pipe over and over, allocates none.
var pipeBuffers = sync.Pool{New: func() any {
	return bytes.NewBuffer(make([]byte, 0, outPipeLimit))
}}

// unread is how many bytes wait for Read. p.mu must be held.
func (p *outPipe) unread() int {
	if p.buf == nil {
		return 0
	}
	return p.buf.Len()
}

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
		for p.rerr == nil && p.werr == nil && p.unread() >= outPipeLimit {
			p.cond.Wait()
		}
		switch {
		case p.rerr != nil:
			return written, p.rerr
		case p.werr != nil:
			return written, io.ErrClosedPipe
		}
		n := min(len(b), outPipeLimit-p.unread())
		if p.buf == nil {
			p.buf = pipeBuffers.Get().(*bytes.Buffer)
		}
		p.buf.Write(b[:n])
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
	for p.rerr == nil && p.werr == nil && p.unread() == 0 {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.unread() == 0 {
		return 0, p.werr
	}
	n, _ := p.buf.Read(b)
	if p.buf.Len() == 0 {
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
	if p.werr == nil {
		p.werr = err
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
	if p.buf != nil {
		p.buf.Reset()
		pipeBuffers.Put(p.buf)
		p.buf = nil
	}
}
