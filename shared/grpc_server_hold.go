package shared

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// holdState says whether hosts hold the plugin (GRPCServer.Host) and runs
// the orphan timer while none does.
//
// Holding is sticky: once a host opened a Host stream the plugin is
// durable, its sessions outlive their streams, and only the orphan timer
// (or a host's Close, Kill or shutdown) ends them. A plugin never held
// behaves as before holds existed: a session dies with its stream, and the
// plugin with its parent (watchHost).
type holdState struct {
	// afterFunc and exit are time.AfterFunc's and os.Exit's stand-ins,
	// replaced by tests so an expiring orphan timer neither waits nor
	// ends the test binary.
	afterFunc func(d time.Duration, f func()) (stop func() bool)
	exit      func(code int)

	mu sync.Mutex
	// mu protects the following.
	held    bool          // a Host stream was opened once
	dying   bool          // the orphan timer fired: the plugin is ending
	open    int           // Host streams open now
	timeout time.Duration // the latest Host stream's orphan timeout
	// stopTimer stops the orphan timer while it runs; timerGen tells a
	// timer that fires late that it was stopped (or replaced) meanwhile.
	stopTimer func() bool
	timerGen  uint64
}

// afterFunc is holdState's default timer: time.AfterFunc.
func afterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Host implements proto.EnvironmentServer: the host's presence. The first
// frame's orphan timeout must be positive. The plugin is held from then on
// (see holdState); the stream stays open until the host ends it or the
// connection breaks, and when the last one ends the orphan timer starts.
func (s *GRPCServer) Host(stream proto.Environment_HostServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	ms := first.GetOrphanTimeoutMs()
	if ms <= 0 {
		return toStatus(fmt.Errorf("%w: orphan timeout of %dms, want more than 0", ErrInvalidArgument, ms))
	}
	timeout := time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
	if !s.holdOpened(timeout) {
		return toStatus(errOrphaned)
	}
	defer s.holdClosed()
	if err := stream.Send(&proto.HostResponse{}); err != nil {
		return err
	}
	for {
		// Nothing more is expected; Recv returns when the host ends the
		// stream (io.EOF) or the stream breaks (the host died).
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

// errOrphaned refuses a host that comes back once the orphan timer has
// fired: the plugin is hanging its sessions up and exiting.
var errOrphaned = fmt.Errorf("%w: the plugin's orphan timeout passed; it is ending its sessions and exiting", ErrUnavailable)

// holdOpened counts a new Host stream and stops the orphan timer. It
// reports false, counting nothing, once the timer has fired.
func (s *GRPCServer) holdOpened(timeout time.Duration) bool {
	h := &s.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dying {
		return false
	}
	h.held = true
	h.open++
	h.timeout = timeout
	if h.stopTimer != nil {
		h.stopTimer()
		h.stopTimer = nil
		s.logger.Info("a host is back; the orphan timer is stopped")
	}
	h.timerGen++
	s.logger.Debug("a host holds the plugin", "holds", h.open, "orphan_timeout", timeout.String())
	return true
}

// holdClosed counts a Host stream's end; at the last one it starts the
// orphan timer.
func (s *GRPCServer) holdClosed() {
	h := &s.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open--
	if h.open > 0 {
		return
	}
	h.timerGen++
	gen, timeout := h.timerGen, h.timeout
	h.stopTimer = h.afterFunc(timeout, func() { s.orphaned(gen) })
	s.logger.Info("no host holds the plugin; its sessions stay until the orphan timeout", "orphan_timeout", timeout.String())
}

// orphaned runs when the orphan timer of generation gen expires: unless a
// host came back meanwhile, it hangs every session up (Kill: SIGHUP, then
// SIGKILL within the grace; containers removed; channels closed), closes
// them, and exits the process. Nothing the plugin started outlives a host
// that did not come back.
func (s *GRPCServer) orphaned(gen uint64) {
	h := &s.hold
	h.mu.Lock()
	current := gen == h.timerGen && h.open == 0
	timeout := h.timeout
	if current {
		// From here no host may come back (holdOpened), nor spawn
		// (dying): CloseAll would miss what it started.
		h.stopTimer = nil
		h.dying = true
	}
	h.mu.Unlock()
	if !current {
		return
	}
	// The host's end of stderr may be gone: this line may go nowhere.
	s.logger.Warn("no host came back within the orphan timeout; hanging every session up and exiting",
		"orphan_timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), hostGoneTimeout)
	s.CloseAll(ctx)
	cancel()
	h.exit(0)
}

// dying reports whether the orphan timer fired: the plugin is ending.
func (s *GRPCServer) dying() bool {
	s.hold.mu.Lock()
	defer s.hold.mu.Unlock()
	return s.hold.dying
}

// held reports whether a host ever held the plugin: then sessions outlive
// their streams, and the plugin its parent.
func (s *GRPCServer) held() bool {
	s.hold.mu.Lock()
	defer s.hold.mu.Unlock()
	return s.hold.held
}
