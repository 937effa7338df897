package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
)

// What attach reads from the local terminal: keystrokes up to the detach key.

// input reads stdin for attach, across reconnections.
type input struct {
	chunks   chan []byte   // what was typed, up to the detach key
	detached chan struct{} // closed when the detach key is read
	err      chan error    // a read error other than EOF
}

// pump reads r until it ends, the detach key is read (it closes
// in.detached after sending what came before the key) or ctx is done. A
// read error other than EOF goes to in.err; at EOF the session keeps
// running and its output keeps coming.
func (in *input) pump(ctx context.Context, r io.Reader, detachKey int) {
	buf := make([]byte, inputBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p, detach := buf[:n], false
			if detachKey >= 0 {
				if i := bytes.IndexByte(p, byte(detachKey)); i >= 0 {
					p, detach = p[:i], true
				}
			}
			if len(p) > 0 {
				select {
				case in.chunks <- bytes.Clone(p):
				case <-ctx.Done():
					return
				}
			}
			if detach {
				close(in.detached)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				in.err <- err
			}
			return
		}
	}
}
