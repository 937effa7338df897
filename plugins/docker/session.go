package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// killGrace is how long Kill lets the session's process handle SIGHUP
	// before SIGKILL.
	killGrace = 2 * time.Second
	// exitTimeout bounds how long Wait waits for the daemon to report the
	// exit once the output has ended.
	exitTimeout = 15 * time.Second
	// cleanupTimeout bounds Close's calls to the daemon.
	cleanupTimeout = 30 * time.Second
	// maxPendingInput caps input typed while an image is being pulled.
	maxPendingInput = 64 << 10
)

// process is what differs between a session in a container of its own and
// one exec'd into an existing container.
type process interface {
	// resize sets the terminal's size.
	resize(ctx context.Context, size shared.Size) error
	// exit waits, after the output has ended, for the exit code. A
	// non-nil error means the daemon did not tell.
	exit(ctx context.Context) (int, error)
	// oomKilled reports whether the kernel killed the process for memory.
	oomKilled(ctx context.Context) bool
	// hangup ends the process: SIGHUP, then SIGKILL after grace. It
	// returns when the process is gone or the attempt is over.
	hangup(ctx context.Context, grace time.Duration)
	// cleanup releases what the session created in the daemon; it kills
	// what still runs.
	cleanup(ctx context.Context)
}

// session is one DOCKER session: a process on a terminal in a container.
// The plugin holds the terminal's master (direct.go), or, through the
// daemon, one hijacked connection carries the raw terminal bytes both
// ways.
//
// Its start runs either in Spawn, or, when the image must be pulled first,
// in a goroutine after Spawn returned; then Read first returns the pull's
// progress lines, and input and resizes that come meanwhile are kept and
// applied once the process runs.
type session struct {
	d   *daemon
	cfg config
	req shared.SpawnRequest
	log hclog.Logger

	// ctx lives until Close; the daemon's wait for the exit runs in it.
	ctx    context.Context
	cancel context.CancelFunc
	// startCtx bounds a start in the background; Kill and Close cancel it.
	startCtx    context.Context
	cancelStart context.CancelFunc
	starter     sync.WaitGroup

	// progress carries the pull's output; nil when there was no pull.
	// Set before Spawn returns. progressDone is Read's alone.
	progress     *io.PipeReader
	progressDone bool

	// started is closed when the start has ended; startErr, proc and
	// term are written before, and not after.
	started  chan struct{}
	startErr error
	proc     process
	term     terminal

	inputMu sync.Mutex
	// inputMu serializes input and resizes, and protects the following.
	live    bool        // the process runs: input goes to term
	pending []byte      // input before that
	size    shared.Size // the latest size asked for

	killOnce sync.Once
	killer   sync.WaitGroup

	closeOnce sync.Once
}

var (
	_ shared.PTY           = (*session)(nil)
	_ shared.InputTerminal = (*session)(nil)
)

// terminal is a session's terminal as the plugin sees it: the daemon's
// attach stream, or the container's terminal itself (direct.go).
type terminal interface {
	io.Reader
	io.Writer
	Close() error
}

// hijacked is the daemon's attach stream as a terminal.
type hijacked struct{ *client.HijackedResponse }

func (h hijacked) Read(b []byte) (int, error) { return h.Reader.Read(b) }

// Write waits while the daemon takes no input, until endInput.
func (h hijacked) Write(b []byte) (int, error) {
	n, err := h.Conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = shared.ErrChildExited
	}
	return n, err
}

// endInput ends a Write blocked on the stream, and makes later ones fail
// at once (shared.ErrChildExited). Read calls it when the output ends:
// the process is gone, but the daemon may keep the stream's input side
// open, its copy into the process stuck on input nobody read, and a Write
// blocked there would hold the session's Close up.
func (h hijacked) endInput() { _ = h.Conn.SetWriteDeadline(time.Now()) }

func (h hijacked) Close() error {
	h.HijackedResponse.Close()
	return nil
}

func newSession(d *daemon, cfg config, req shared.SpawnRequest, log hclog.Logger) *session {
	s := &session{
		d:       d,
		cfg:     cfg,
		req:     req,
		log:     log,
		started: make(chan struct{}),
		size:    req.Size,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.startCtx, s.cancelStart = context.WithCancel(s.ctx)
	return s
}

// running records a successful start: the process runs, on a terminal of
// the given size, and input flows. A resize asked for meanwhile is
// applied, and input kept while the image was pulled is sent.
func (s *session) running(proc process, term terminal, size shared.Size) {
	s.proc, s.term = proc, term
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	s.live = true
	if s.size != size {
		if err := proc.resize(s.ctx, s.size); err != nil {
			s.log.Debug("applying a resize sent during the start failed", "error", err)
		}
	}
	if len(s.pending) > 0 {
		pending := s.pending
		s.pending = nil
		if _, err := term.Write(pending); err != nil {
			s.log.Debug("sending input typed during the pull failed", "error", err)
		}
	}
}

// finishStart ends the start, successful or not.
func (s *session) finishStart(err error) {
	s.startErr = err
	close(s.started)
}

// abandon releases a session whose start failed inside Spawn: the start
// removed what it created.
func (s *session) abandon() {
	s.cancel()
}

// currentSize returns the latest size asked for.
func (s *session) currentSize() shared.Size {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	return s.size
}

// startAfterPull pulls the image and then starts the container, in the
// background, writing the pull's progress (and any failure) to the
// session's output.
func (s *session) startAfterPull(e *Docker) {
	pr, pw := io.Pipe()
	s.progress = pr
	s.starter.Go(func() {
		err := pullImage(s.startCtx, s.d, s.cfg.Image, pw)
		if err == nil {
			var img client.ImageInspectResult
			img, _, err = imageInfo(s.startCtx, s.d, s.cfg.Image)
			if err == nil {
				err = s.startContainer(s.startCtx, e, img)
			}
			if err != nil {
				err = fmt.Errorf("starting the container: %w", err)
			}
		} else {
			err = fmt.Errorf("pulling image %s: %w", s.cfg.Image, err)
		}
		if err != nil && s.startCtx.Err() == nil {
			// Say why on the terminal, unless the session was killed or
			// closed meanwhile.
			fmt.Fprintf(pw, "ptyhost: %v\r\n", err)
			s.log.Warn("session failed to start", "error", err)
		}
		// Before the pipe ends, so that Read, which goes on to the
		// terminal at the pipe's end, finds the start over.
		s.finishStart(err)
		pw.Close()
	})
}

// Read returns the terminal's output: the pull's progress, if any, then
// the process's bytes, untouched. It returns io.EOF once the process's
// output has ended (the connection to the daemon closed), or the start
// failed.
func (s *session) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if s.progress != nil && !s.progressDone {
		n, err := s.progress.Read(b)
		if n > 0 {
			return n, nil
		}
		if err == nil {
			return 0, nil
		}
		s.progressDone = true
	}
	<-s.started
	if s.startErr != nil {
		return 0, io.EOF
	}
	n, err := s.term.Read(b)
	if n > 0 {
		return n, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		s.log.Debug("session output ended", "error", err)
	}
	if e, ok := s.term.(interface{ endInput() }); ok {
		e.endInput()
	}
	return 0, io.EOF
}

// Write sends input to the terminal. While the image is pulled, it is kept
// (up to maxPendingInput) and sent once the process runs.
func (s *session) Write(b []byte) (int, error) {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.live {
		return s.term.Write(b)
	}
	select {
	case <-s.started:
		return 0, fmt.Errorf("session did not start: %w", s.startErr)
	default:
	}
	if len(s.pending)+len(b) > maxPendingInput {
		return 0, errors.New("input buffer full while the image is pulled")
	}
	s.pending = append(s.pending, b...)
	return len(b), nil
}

// InputTerminal implements shared.InputTerminal: once the process runs on
// a direct terminal, Write and Resize are the terminal's, so a host may
// write input to it and size it itself; before (input and sizes kept
// during a pull) or through the daemon they are not.
func (s *session) InputTerminal() *shared.Terminal {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if !s.live {
		return nil // and term may be being set
	}
	t, _ := s.term.(*shared.Terminal)
	return t
}

// Resize sets the terminal's size through the daemon; before the process
// runs, the size is kept for its start.
func (s *session) Resize(ctx context.Context, size shared.Size) error {
	if size.Cols == 0 || size.Rows == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", shared.ErrInvalidArgument, size.Cols, size.Rows)
	}
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	s.size = size
	if !s.live {
		return nil
	}
	return s.proc.resize(ctx, size)
}

// Wait returns how the process ended: its exit code (and the signal it
// means, see exitStatus), or, when the daemon cannot tell because the
// connection to it was lost, code -1 and a reason.
func (s *session) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-s.started:
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
	if err := s.startErr; err != nil {
		if s.startCtx.Err() != nil && s.ctx.Err() == nil {
			// Killed before its process started: as if hung up.
			return exitStatus(128 + 1), nil
		}
		return shared.ExitStatus{Code: -1, Reason: err.Error()}, nil
	}
	code, err := s.proc.exit(ctx)
	if err == nil {
		// The daemon may report an exit because it is shutting down:
		// it stops listening first, then stops every container.
		err = s.d.alive(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return shared.ExitStatus{}, ctx.Err()
		}
		if s.ctx.Err() != nil {
			return shared.ExitStatus{}, errors.New("session closed")
		}
		s.log.Warn("lost the docker daemon", "error", err)
		return shared.ExitStatus{Code: -1, Reason: fmt.Sprintf("docker daemon connection lost: %v", err)}, nil
	}
	st := exitStatus(code)
	if st.Signal == "SIGKILL" && s.proc.oomKilled(ctx) {
		st.Reason = "out of memory: the kernel killed the process at the container's memory limit"
	}
	s.log.Debug("session process exited", "code", st.Code, "signal", st.Signal)
	return st, nil
}

// Kill ends the process: SIGHUP, then SIGKILL after killGrace (or half the
// time to ctx's deadline, if shorter), in the background. Before the
// process runs, it cancels the pull or start. Later calls do nothing.
func (s *session) Kill(ctx context.Context) error {
	grace := killGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = max(0, min(grace, time.Until(dl)/2))
	}
	s.kill(grace)
	return nil
}

func (s *session) kill(grace time.Duration) {
	s.killOnce.Do(func() {
		s.cancelStart()
		s.killer.Go(func() {
			<-s.started
			if s.startErr != nil {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, grace+cleanupTimeout)
			defer cancel()
			s.proc.hangup(ctx, grace)
		})
	})
}

// Close ends the start if it still runs, closes the connection (a blocked
// Read returns io.EOF), kills what still runs and removes the container the
// session created (unless the config keeps it). An exec target is never
// stopped or removed: only the session's processes are killed, the
// exec'd process and what it left running, even once the exec has ended.
func (s *session) Close() error {
	s.closeOnce.Do(func() {
		s.cancelStart()
		if s.progress != nil {
			// Unblocks the start's writes, and a Read of the progress.
			s.progress.CloseWithError(io.EOF)
		}
		s.starter.Wait()
		<-s.started
		if s.startErr == nil {
			s.term.Close()
			s.killer.Wait()
			ctx, cancel := context.WithTimeout(s.ctx, cleanupTimeout+killGrace)
			s.proc.cleanup(ctx)
			cancel()
		}
		s.cancel()
	})
	return nil
}
