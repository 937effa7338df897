package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// ExitStatus tells how a session's process ended.
type ExitStatus = shared.ExitStatus

// sessState is where a session is in its life.
type sessState uint8

const (
	stateStarting  sessState = iota // reserved; the plugin is spawning it
	stateRunning                    // its process runs
	stateExited                     // its process ended; it lingers
	stateDestroyed                  // destroyed or hung up; gone from the map
)

// Reasons recorded with an abnormal status.
const (
	ReasonPluginCrashed  = "plugin_crashed"
	ReasonServerShutdown = "server_shutdown"
	ReasonIdleTimeout    = "idle_timeout"
)

// sessionDeps is what a session needs from around it. The Manager builds
// one when it starts and every session shares it; a session holds no
// pointer back to the Manager.
type sessionDeps struct {
	log     *slog.Logger     // the manager's; each session adds its id
	now     func() time.Time // the clock, in UTC
	writer  *writer          // records the session's status in the store
	metrics *metrics
	publish func(Event) // stamps an event with the time and sends it

	scrollbackBytes  int           // each ring's capacity
	activityInterval time.Duration // least time between two last_active_at writes

	// exited is called once a running session's process has ended on its
	// own and everything about it is recorded (the Manager lets it
	// linger).
	exited func(*session)
	// releases tells the plugins to forget exited sessions once their end
	// is stored.
	releases *exitReleases
	// detached is called when a client closes its attachment.
	detached func(*Attachment)
}

// session is one live terminal session. Its output pump, the one goroutine
// that reads the PTY, scans the output and owns the ring's writes;
// attachments read the ring at their own offsets. The pump waits for the
// clients that keep reading, never for long for one that stopped
// (flow.go).
type session struct {
	id   string
	deps *sessionDeps
	log  *slog.Logger

	// scanner belongs to the pump alone: it scans output for safe points
	// before the pump takes mu to commit it to the ring.
	scanner scanner

	pumpDone chan struct{} // closed when the pump has ended
	closePTY sync.Once
	pty      shared.PTY // set once, before the pump starts
	envType  string

	mu          sync.Mutex // protects the following
	state       sessState
	rec         SessionRecord
	ring        *ring
	attachments map[*Attachment]struct{}
	// writers counts the attachments that are not read-only: only they
	// make the session ACTIVE or IDLE and start or stop its idle timeout.
	// A viewer changes nothing, its leaving included.
	writers int
	// displaced counts the viewers that gave their places to writers and
	// have not left yet; attachSeq numbers the attachments (Attachment.seq).
	displaced int
	attachSeq uint64
	// typist is the attachment whose input came last, while attached: of
	// several clients, its output may be written directly (direct.go).
	typist *Attachment
	// watchersDue is set while watchersTimer runs to wake the clients
	// that a direct write passed over (direct.go, deliver).
	watchersDue   bool
	watchersTimer *time.Timer
	lastDirect    time.Time // when the last direct write ended (deliver)
	exit          *ExitStatus
	closeCode     int       // when destroyed: the close code for clients
	closeReason   string    // when destroyed: the close reason for clients
	drain         bool      // when destroyed: deliver output and exit first
	flow          sync.Cond // on mu: the pump waits on it for a client (flow.go)
	pumpWaiting   bool      // the pump waits on flow
	roomFloor     int64     // while the pump waits to commit: the oldest offset kept after (makeRoomLocked)
	idleTimer     *time.Timer
	lingerTimer   *time.Timer
	// keepAllTimer ends, exitKeepAll after its exit, an exited session's
	// keeping its whole scrollback (linger.go).
	keepAllTimer *time.Timer
	lastActive   time.Time // last activity written to the store
	// changedAt is when the last change of rec was queued for the store
	// (changed), in microseconds since 1970; 0 before the first. It is the
	// record's UpdatedAt (recLocked), as the store stamps the row it
	// writes. Atomic: some changes are queued outside mu.
	changedAt atomic.Int64
	// closedEarly: a teardown closed the PTY because its kill did not
	// end the output; an error ending the output after that is the
	// close's, not an end of the session's own.
	closedEarly bool
	// detached says the server leaves the session running (Detach): its
	// pump ends without recording anything about the session's end, which
	// the plugin keeps for the next server.
	detached bool
	// caughtUp, when set, is closed once the ring reaches catchUpTo or the
	// pump ends: a session taken up again has read what its plugin kept.
	caughtUp  chan struct{}
	catchUpTo int64

	// recorder, when set (before the pump starts, never changed), records
	// the session (recording.go); nil when it is not recorded.
	recorder *recorder

	// inputSlot is held by the one input write under way (input).
	inputSlot chan struct{}

	// created is closed once the CreateSession that made the session has
	// returned (at once for a session taken up): until then a session
	// destroyed while starting is its create's to record and clean up.
	created chan struct{}
	// cancelStart, while the plugin starts the session (its create) or
	// its new process (a restart), cancels that start: a destroy of the
	// session does (teardown).
	cancelStart context.CancelCauseFunc
}

// newSession returns a session, STARTING, for rec.
func newSession(d *sessionDeps, rec SessionRecord) *session {
	s := &session{
		id:          rec.ID,
		deps:        d,
		log:         d.log.With("session_id", rec.ID),
		scanner:     newScanner(d.scrollbackBytes),
		pumpDone:    make(chan struct{}),
		ring:        newRing(d.scrollbackBytes),
		attachments: make(map[*Attachment]struct{}),
		inputSlot:   make(chan struct{}, 1),
		created:     make(chan struct{}),
		lastActive:  rec.LastActiveAt,
		rec:         rec,
	}
	s.flow.L = &s.mu
	return s
}

// epochLocked returns Hello.Epoch: the session's creation time, in
// microseconds (as every store keeps it), base 36. s.mu is held.
func (s *session) epochLocked() string {
	return strconv.FormatInt(s.rec.CreatedAt.UnixMicro(), 36)
}

// snapshot returns the session's record as it is now.
func (s *session) snapshot() SessionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recLocked()
}

// recLocked returns the session's record, updated_at its last change's
// time. s.mu is held.
func (s *session) recLocked() SessionRecord {
	rec := s.rec
	if t := s.changedAt.Load(); t != 0 {
		rec.UpdatedAt = time.UnixMicro(t).UTC()
	}
	return rec
}

// changed queues u, a change of the session's record, for the store, and
// stamps the record with the change's time.
func (s *session) changed(u SessionUpdate) { s.changedThen(u, nil) }

// changedThen is changed, then calls then once u is stored
// (writer.updateThen).
func (s *session) changedThen(u SessionUpdate, then func()) {
	s.changedAt.Store(s.deps.now().UnixMicro())
	s.deps.writer.updateThen(s.id, u, then)
}

func (s *session) hasExited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateExited
}

// wakeAll tells every attachment there is something new, and the pump, if
// it waits for a client, to look again. s.mu must be held.
func (s *session) wakeAll() {
	for a := range s.attachments {
		a.wake()
	}
	s.flowChanged()
}

// The pump's read buffer, which every running session holds: a session
// starts with a small one, so that an idle session holds little, and gets
// one four times larger each time a read fills it, up to the large one, so
// that a flood is read in few, large reads (a plugin sends up to 64 KiB at
// a time).
const (
	pumpStartBufferSize = 256
	pumpBufferSize      = 64 << 10
)

// pump reads the PTY until it ends, then records the exit. Before each read
// it waits while its clients are too far behind (flow.go); a session
// detached meanwhile (Manager.Detach) stops it there.
func (s *session) pump(ctx context.Context) {
	defer close(s.pumpDone)
	buf := make([]byte, pumpStartBufferSize)
	limit := s.maxRead()
	var readErr error
	for {
		if s.waitFlow(ctx) {
			break // detached while it waited: see below
		}
		n, err := s.pty.Read(buf[:min(len(buf), limit)])
		if n > 0 {
			s.output(ctx, buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if n == len(buf) && n < pumpBufferSize && n < limit {
			// Grown in steps, so that a burst of a few hundred bytes
			// does not leave a quiet session holding 64 KiB.
			buf = make([]byte, min(4*len(buf), pumpBufferSize))
		}
	}
	if s.recorder != nil {
		// Every output byte is queued: write them and close the file.
		s.recorder.close()
	}
	var st ExitStatus
	var err error
	s.mu.Lock()
	left := s.detached // before the PTY ended: nothing to wait for
	s.mu.Unlock()
	switch {
	case readErr != nil:
		err = readErr
	case !left:
		st, err = s.pty.Wait(ctx)
	}
	s.mu.Lock()
	s.markCaughtUp(true)
	detached := s.detached
	s.mu.Unlock()
	if detached {
		// The PTY was detached (Detach): the read failed for that, not
		// because the session ended, and whatever did end is the next
		// server's to record.
		return
	}
	s.exited(st, err)
}

// resumeAt prepares s, not yet running, to take up a session a plugin kept:
// its ring and scanner begin at start, the offset of the first byte the
// plugin sends. The channel it returns is closed once the ring reaches
// end, the end of the output the plugin said it kept, or the pump ends.
func (s *session) resumeAt(start, end int64) <-chan struct{} {
	s.ring.beginAt(start)
	if start == 0 {
		s.scanner = newScanner(s.deps.scrollbackBytes) // the session's start: a fresh terminal
	} else {
		s.scanner = newScannerMidway(start, s.deps.scrollbackBytes)
	}
	ch := make(chan struct{})
	s.caughtUp, s.catchUpTo = ch, end
	s.markCaughtUp(false)
	return ch
}

// markCaughtUp closes caughtUp if the ring has reached catchUpTo, or the
// pump has ended (ended). s.mu must be held, or s not yet running.
func (s *session) markCaughtUp(ended bool) {
	if s.caughtUp == nil || (!ended && s.ring.End() < s.catchUpTo) {
		return
	}
	close(s.caughtUp)
	s.caughtUp = nil
}

// output scans p for safe points, appends it to the scrollback, once no
// client keeping up would lose bytes it has yet to read (makeRoomLocked),
// and wakes the attachments.
func (s *session) output(ctx context.Context, p []byte) {
	now := s.deps.now()
	// The pump alone scans, so it does so before taking the lock that
	// attachments need.
	points, modes := s.scanner.scan(p)
	s.mu.Lock()
	s.makeRoomLocked(ctx, len(p))
	s.ring.commit(p, points, modes)
	s.markCaughtUp(false)
	d, direct := s.directTarget(len(p))
	if d != nil {
		// Written below by the pump itself, before the other clients
		// are woken (deliver).
		d.off += int64(len(p))
		d.directBusy = true
		s.flowProgress(d)
	} else {
		s.wakeAll()
	}
	touch := now.Sub(s.lastActive) >= s.deps.activityInterval
	if touch {
		s.lastActive = now
		s.rec.LastActiveAt = now
	}
	s.mu.Unlock()
	if s.recorder != nil {
		// Before the delivery: input typed meanwhile is recorded after.
		s.recorder.output(p)
	}
	if d != nil {
		s.deliver(d, direct, p)
	}
	s.deps.metrics.bytesOut.Add(float64(len(p)))
	if touch {
		s.recordActive(now)
	}
}

// recordActive has the session's last activity, now, written to the
// store. Its own function: a keystroke's now, whose address the update
// takes, would otherwise be allocated at every keystroke rather than
// once per activityInterval.
func (s *session) recordActive(now time.Time) {
	s.changed(SessionUpdate{LastActiveAt: &now})
}

// inputWait bounds how long input waits for the terminal while earlier
// input still waits to be written (the program does not read): then it is
// dropped with ErrInputBlocked, so that one stuck write holds up no
// client for longer. A variable for tests.
var inputWait = 10 * time.Second

// ErrInputBlocked: input was dropped because earlier input is still
// waiting for the program to read it.
var ErrInputBlocked = errors.New("the program is not reading its input: earlier input is still waiting to be written, so this was dropped")

// input writes p to the terminal, after the input written before it; it
// waits at most inputWait for that (ErrInputBlocked).
func (s *session) input(p []byte) error { return s.inputTo(s.pty, p) }

// inputTo is input written to w: the session's PTY, or one process of it
// (the initial input's, typeInput).
func (s *session) inputTo(w io.Writer, p []byte) error {
	select {
	case s.inputSlot <- struct{}{}: // a keystroke's way: no timer
	default:
		t := time.NewTimer(inputWait)
		select {
		case s.inputSlot <- struct{}{}:
			t.Stop()
		case <-t.C:
			return ErrInputBlocked
		}
	}
	defer func() { <-s.inputSlot }()
	if s.recorder != nil {
		// Before the write: its echo can come back, and be recorded,
		// before the write returns.
		s.recorder.recordInput(p)
	}
	if _, err := w.Write(p); err != nil {
		return err
	}
	s.deps.metrics.bytesIn.Add(float64(len(p)))
	now := s.deps.now()
	s.mu.Lock()
	touch := now.Sub(s.lastActive) >= s.deps.activityInterval
	if touch {
		s.lastActive = now
		s.rec.LastActiveAt = now
	}
	s.mu.Unlock()
	if touch {
		s.recordActive(now)
	}
	return nil
}

// exited records the end of the process: every output byte is in the ring
// by now, so attachments deliver it all before the exit message.
func (s *session) exited(st ExitStatus, err error) {
	s.mu.Lock()
	if s.detached {
		// Detach came between the pump's end and here: the session's end,
		// whatever it was, is the plugin's to keep and the next server's
		// to record, and the session must not be released.
		s.mu.Unlock()
		return
	}
	if err != nil && s.closedEarly {
		s.log.Info("the session's output ended with its close", "err", err)
		err, st = nil, ExitStatus{Code: -1}
	}
	if err != nil {
		st.Code = -1
		if errors.Is(err, shared.ErrPluginExited) {
			st.Reason = ReasonPluginCrashed
		} else {
			st.Reason = err.Error()
		}
	}
	s.exit = &st
	running := s.state == stateRunning
	if running {
		s.state = stateExited
	}
	if s.idleTimer != nil {
		s.idleTimer.Stop()
		s.idleTimer = nil
	}
	s.rec.ExitCode = &st.Code
	s.rec.ExitSignal = st.Signal
	s.rec.ActiveConnections = len(s.attachments)
	// An end the process did not choose — the plugin lost its daemon or
	// its remote host, or the plugin itself died — is an ERROR.
	abnormal := err != nil || st.Reason != ""
	if abnormal {
		s.rec.Status, s.rec.StatusReason = StatusError, st.Reason
	} else if running {
		s.rec.Status, s.rec.StatusReason = StatusTerminated, st.Reason
	}
	rec := s.recLocked()
	s.wakeAll()
	u := SessionUpdate{ExitCode: &st.Code, ExitSignal: &st.Signal}
	if running || abnormal {
		// A destroyed session's status is teardown's to record.
		u.Status, u.StatusReason = &rec.Status, &rec.StatusReason
	}
	// Under s.mu, so that updates queue in the order of the changes they
	// record (a client's detach may race the exit). The plugin, which
	// keeps the exit for the next server until told to forget the
	// session, is told once the exit is stored (exitReleases).
	s.changedThen(u, s.deps.releases.await(s))
	s.mu.Unlock()
	if abnormal {
		if err == nil {
			err = errors.New(st.Reason)
		}
		s.log.Warn("session ended abnormally", "err", err)
		s.deps.publish(Event{Type: SessionError, SessionID: s.id, Err: err, Exit: &st})
	} else {
		s.log.Info("session exited", "code", st.Code, "signal", st.Signal)
		s.deps.publish(Event{Type: SessionExited, SessionID: s.id, Exit: &st})
	}
	if running {
		s.deps.exited(s)
	}
}

// release calls the plugin's cleanup for the session, once.
func (s *session) release() {
	s.closePTY.Do(func() {
		if err := s.pty.Close(); err != nil {
			s.log.Warn("adapter cleanup failed", "err", err)
		}
	})
}
