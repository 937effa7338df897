package core

import (
	"context"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// The PTY a created session's pump reads, which a restart in place swaps
// under it (restart.go).

// restart is one restart of a restartable, from begin to install or
// abort.
type restart struct {
	drained chan struct{} // closed when the old process's output has ended
	done    chan struct{} // closed by install or abort: the pump reads on
	parked  bool          // the pump waits in Read for done
}

// restartable is the PTY a created session's pump reads: the current
// process's, and after a restart the next one's, each process's output
// following the last's. It also tells when the process first wrote
// (for the initial input).
type restartable struct {
	mu        sync.Mutex // protects the following
	cur       shared.PTY
	req       shared.SpawnRequest // what cur was spawned with
	restart   *restart            // a restart in progress
	pending   error               // an end of cur's output owed to the next Read
	final     *ExitStatus         // when set, what Wait reports: the restart did not go through
	killed    bool
	closed    bool
	ended     bool          // Read returned the end of the output: the pump is done reading
	curClosed bool          // a restart has closed cur, which is no longer to be used
	output    chan struct{} // closed at cur's first output
	lastWrite time.Time     // when cur last wrote
	in        []byte        // the initial input, typed into each process
	// fromRecord says req is not what cur was spawned with, which this
	// server does not know: cur was taken up from a previous server
	// (Reconcile), and a restart builds its request from the session's
	// record (requestFromRecord). The first restart's install clears it.
	fromRecord bool

	// marks are the offsets at which restarts' output begins, the last
	// maxRestartMarks of them, for attachments to be told (restartMark).
	// Protected by the session's mu, not by mu.
	marks []int64
}

// maxRestartMarks bounds restartable.marks: a client further behind than
// that many restarts is told of the later ones only.
const maxRestartMarks = 16

// input returns the initial input. r.mu must be held.
func (r *restartable) input() []byte { return r.in }

// restartableDetacher is a restartable whose PTYs can be detached
// (shared.Detacher), so that Detach leaves its session to the plugin.
type restartableDetacher struct{ *restartable }

// Detach implements shared.Detacher.
func (d restartableDetacher) Detach() {
	d.mu.Lock()
	cur := d.cur
	d.mu.Unlock()
	if dt, ok := cur.(shared.Detacher); ok {
		dt.Detach()
	}
}

// newRestartable wraps p, spawned with req, whose initial input is in. The
// result is a shared.Detacher exactly when p is.
func newRestartable(p shared.PTY, req shared.SpawnRequest, in []byte) (shared.PTY, *restartable) {
	r := &restartable{cur: p, req: req, output: make(chan struct{}), in: in}
	if _, ok := p.(shared.Detacher); ok {
		return restartableDetacher{r}, r
	}
	return r, r
}

// adoptRestartable wraps p, a session's PTY taken up from a previous
// server, whose spawn request this server does not know: a restart builds
// one from the session's record.
func adoptRestartable(p shared.PTY) shared.PTY {
	p, r := newRestartable(p, shared.SpawnRequest{}, nil)
	r.fromRecord = true
	return p
}

// recordOnly reports whether a restart must build its request from the
// session's record (restartable.fromRecord).
func (r *restartable) recordOnly() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fromRecord
}

// ptyRestartable returns the restartable behind p, if p is one.
func ptyRestartable(p shared.PTY) (*restartable, bool) {
	switch v := p.(type) {
	case *restartable:
		return v, true
	case restartableDetacher:
		return v.restartable, true
	}
	return nil, false
}

// begin starts a restart and returns it with a copy of the last request.
func (r *restartable) begin() (*restart, shared.SpawnRequest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restart != nil {
		return nil, shared.SpawnRequest{}, ErrRestartInProgress
	}
	if r.killed || r.closed || r.final != nil {
		return nil, shared.SpawnRequest{}, ErrSessionNotFound
	}
	if r.ended {
		// The process ended on its own, and the pump, done reading,
		// waits for its exit status: no output will come to end, and
		// the session is about to be recorded as exited.
		return nil, shared.SpawnRequest{}, ErrSessionEnded
	}
	rs := &restart{drained: make(chan struct{}), done: make(chan struct{})}
	r.restart = rs
	req := r.req
	req.Command, req.Env = slices.Clone(req.Command), maps.Clone(req.Env)
	return rs, req, nil
}

// closeOld closes old, the current PTY, for a restart: Kill and Close
// leave it alone then, since a PTY is closed once.
func (r *restartable) closeOld(old shared.PTY) error {
	r.mu.Lock()
	r.curClosed = true
	r.mu.Unlock()
	return old.Close()
}

func (r *restartable) current() shared.PTY {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// parked reports whether the pump waits for rs's new process.
func (r *restartable) parked(rs *restart) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return rs.parked && r.restart == rs
}

// killCurrent kills the current process for a restart: unlike Kill, the
// session goes on.
func (r *restartable) killCurrent(ctx context.Context) error { return r.current().Kill(ctx) }

// install makes p, spawned with req, the current process, calls installed
// (with r.mu held: it must not take r's lock) and lets the pump read on. It
// reports false, changing nothing and calling nothing, when the session
// was killed or closed meanwhile: the pump then ends with oldExit.
func (r *restartable) install(rs *restart, p shared.PTY, req shared.SpawnRequest, oldExit ExitStatus, installed func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restart != rs {
		return false
	}
	r.restart = nil
	if r.killed || r.closed {
		r.final = &oldExit
		close(rs.done)
		return false
	}
	r.cur, r.req, r.pending, r.curClosed = p, req, nil, false
	r.fromRecord = false
	r.output, r.lastWrite = make(chan struct{}), time.Time{}
	installed() // before the pump may read the new process (rs.done)
	close(rs.done)
	return true
}

// abort ends rs without a new process: the pump's Read ends and Wait
// reports st.
func (r *restartable) abort(rs *restart, st ExitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restart != rs {
		return
	}
	r.restart = nil
	r.final = &st
	close(rs.done)
}

// Read implements shared.PTY: the current process's output; at its end,
// while a restart is in progress, it waits for the next process and reads
// on.
func (r *restartable) Read(p []byte) (int, error) {
	for {
		r.mu.Lock()
		cur, pending := r.cur, r.pending
		r.mu.Unlock()
		var n int
		err := pending
		if err == nil {
			n, err = cur.Read(p)
		}
		r.mu.Lock()
		if n > 0 {
			if r.lastWrite.IsZero() {
				close(r.output)
			}
			r.lastWrite = time.Now()
		}
		if err == nil {
			r.mu.Unlock()
			return n, nil
		}
		rs := r.restart
		if rs == nil || r.killed || r.closed {
			r.pending = nil
			r.ended = true
			if rs != nil {
				// Destroyed while restarting: end here, with the old
				// process, which the pump waits for.
				r.restart = nil
				close(rs.drained)
				close(rs.done)
			}
			r.mu.Unlock()
			return n, err
		}
		if n > 0 {
			r.pending = err
			r.mu.Unlock()
			return n, nil
		}
		// The old process's output has ended: wait for the new one.
		r.pending = nil
		rs.parked = true
		close(rs.drained)
		r.mu.Unlock()
		<-rs.done
		r.mu.Lock()
		final := r.final
		r.mu.Unlock()
		if final != nil {
			return 0, io.EOF
		}
	}
}

// Write implements shared.PTY.
func (r *restartable) Write(p []byte) (int, error) { return r.current().Write(p) }

// Resize implements shared.PTY.
func (r *restartable) Resize(ctx context.Context, size shared.Size) error {
	return r.current().Resize(ctx, size)
}

// Wait implements shared.PTY.
func (r *restartable) Wait(ctx context.Context) (ExitStatus, error) {
	r.mu.Lock()
	cur, final := r.cur, r.final
	r.mu.Unlock()
	if final != nil {
		return *final, nil
	}
	return cur.Wait(ctx)
}

// Kill implements shared.PTY: it ends the session, and a restart in
// progress with it.
func (r *restartable) Kill(ctx context.Context) error {
	r.mu.Lock()
	r.killed = true
	cur, gone := r.cur, r.curClosed
	r.mu.Unlock()
	if gone {
		return nil // ended and closed by a restart, which sees killed
	}
	return cur.Kill(ctx)
}

// Close implements shared.PTY.
func (r *restartable) Close() error {
	r.mu.Lock()
	r.closed = true
	cur, gone := r.cur, r.curClosed
	r.mu.Unlock()
	if gone {
		return nil // closed by a restart, which sees closed
	}
	return cur.Close()
}

var _ shared.Detacher = restartableDetacher{}
