package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const recHelp = `Usage: ptyhost rec [flags] ID > FILE.cast

Write a session's recording to stdout: an asciicast v2 file, which
'asciinema play FILE.cast' and asciinema's web player play. ID may be any
unique prefix of a session's ID. A session is recorded as its create says
("record": true or false), else as its environment says, else as the
server's --record; its recording is kept in the server's
DATA_DIR/recordings after it ends. A session still running gives its
recording so far.

Exit status: 0 when the recording was written, 1 otherwise (no such
session, or it has no recording).
`

// getRecording writes session id's recording to w. However large it is,
// the download is not bounded in total: the server must answer within
// c.timeout, and then send something at least every c.timeout.
func (c *client) getRecording(ctx context.Context, id string, w io.Writer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := &noAnswerError{base: c.base, within: c.timeout}
	var idle *time.Timer
	if c.timeout > 0 {
		idle = time.AfterFunc(c.timeout, func() { cancel(stalled) })
		defer idle.Stop()
	}
	timedOut := func(err error) error {
		if errors.Is(context.Cause(ctx), stalled) {
			return stalled
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/sessions/"+url.PathEscape(id)+"/recording"), nil)
	if err != nil {
		return err
	}
	req.Header = c.header()
	resp, err := c.http.Do(req)
	if err != nil {
		return timedOut(c.connError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	var body io.Reader = resp.Body
	if idle != nil {
		idle.Stop() // the answer came; its reads are bounded one by one
		body = &idleReader{r: resp.Body, idle: idle, d: c.timeout}
	}
	n, err := io.Copy(w, body)
	err = timedOut(err)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("the recording was cut short after %d bytes: %w", n, err)
	}
	return nil
}

// idleReader reads r with idle armed to fire after d during each Read,
// and only then: the wait for the network is bounded, the writes of what
// was read (to a slow pipe, say) are not.
type idleReader struct {
	r    io.Reader
	idle *time.Timer
	d    time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.idle.Reset(r.d)
	n, err := r.r.Read(p)
	r.idle.Stop()
	return n, err
}

// runRec is `ptyhost rec ID`: it writes the session's recording to stdout.
func runRec(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("rec", &cf)
	ids, help, err := parseFlags(fs, recHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(ids) != 1 {
		return usageError{"rec: want one session ID (see 'ptyhost rec --help')"}
	}
	if err := checkIDArg("rec", "session", ids[0]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveSessionID(ctx, c, ids[0])
	if err != nil {
		return fmt.Errorf("rec %s: %w", ids[0], err)
	}
	if err := c.getRecording(ctx, id, stdio.out); err != nil {
		return fmt.Errorf("rec %s: %w", id, err)
	}
	return nil
}

// recordBytes is --record-max-bytes: a byteSize of at least 4KiB, room for
// a recording's header and its final marker.
type recordBytes byteSize

func (b *recordBytes) String() string { return (*byteSize)(b).String() }

func (b *recordBytes) Set(v string) error {
	var n byteSize
	if err := n.Set(v); err != nil {
		return err
	}
	if n < 4<<10 {
		return fmt.Errorf("%s is too small: want at least 4KiB, such as 64MiB", humanBytes(int(n)))
	}
	*b = recordBytes(n)
	return nil
}
