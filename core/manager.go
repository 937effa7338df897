package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Manager keeps the live sessions: it creates them through the plugins,
// pumps their output into scrollback, attaches clients, and records their
// status in the store.
type Manager struct {
	opts    Options
	store   Store
	plugins Dispatcher
	log     *slog.Logger
	writer  *writer
	events  *bus
	metrics *metrics
	deps    *sessionDeps // what every session gets

	ctx    context.Context // ends when Close is done
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the manager started

	closeOnce sync.Once // Close and Detach: the first one stops the manager
	closeErr  error
	byDetach  atomic.Bool // Detach, not Close, stopped it

	mu          sync.Mutex // protects the following
	sessions    map[string]*session
	ending      map[string]chan struct{} // ids being destroyed: closed when done (takeOutLocked)
	envDeletes  uint64                   // environments deleted, for CreateSession to see one it looked up go
	envDeleting map[string]chan struct{} // environments being deleted: closed when done (DeleteEnvironment)
	closed      bool
	attachments int           // attachments not yet closed
	detached    chan struct{} // closed when attachments drops to 0

	lingering lingerRings // exited sessions' scrollback
	health    storeHealth // the last store check
}

// New returns a Manager. Call Reconcile once before creating sessions, and
// Close (hang every session up) or Detach (leave them to their plugins for
// the next server) to stop it.
func New(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts:        opts,
		store:       opts.Store,
		plugins:     opts.Plugins,
		log:         opts.Logger,
		ctx:         ctx,
		cancel:      cancel,
		sessions:    make(map[string]*session),
		ending:      make(map[string]chan struct{}),
		envDeleting: make(map[string]chan struct{}),
		metrics:     newMetrics(),
	}
	m.lingering.keepAllFor = exitKeepAll
	if opts.Registerer != nil {
		if err := m.metrics.register(opts.Registerer, m); err != nil {
			cancel()
			return nil, fmt.Errorf("core: registering metrics: %w", err)
		}
	}
	m.writer = newWriter(opts.Store, m.log, m.metrics)
	m.events = newBus(func() { m.metrics.eventsDropped.Inc() })
	m.deps = &sessionDeps{
		log:              m.log,
		now:              m.now,
		writer:           m.writer,
		metrics:          m.metrics,
		publish:          m.publish,
		scrollbackBytes:  opts.ScrollbackBytes,
		activityInterval: opts.ActivityInterval,
		exited:           m.exited,
		releases:         newExitReleases(),
		detached:         m.detach,
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.writer.run(ctx)
	}()
	if opts.Relay != nil {
		m.wg.Go(func() { m.receiveRelayed(ctx) })
	}
	// The loop runs with KeepForever too, when there are recordings: it
	// deletes no row then, but removes the recordings whose rows another
	// node's prune deleted, which nothing else would.
	if opts.Retention != KeepForever || opts.RecordingDir != "" {
		m.wg.Go(func() { m.purgeLoop(ctx) })
	}
	return m, nil
}

// now is the clock, in UTC, to the microsecond: the precision the stores
// keep (PostgreSQL's), so that a time read from memory is the one a
// later read of the store gives.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Truncate(time.Microsecond) }

// Subscribe returns the manager's events until ctx ends or the manager
// closes, when the channel is closed. Events arrive in the order they
// happened. A subscriber that falls more than 256 events behind misses the
// newer events until it catches up; sessions never wait for subscribers.
func (m *Manager) Subscribe(ctx context.Context) <-chan Event {
	return m.events.subscribe(ctx)
}

// publish delivers e, which happened in this manager, to its subscribers
// and, on a node of a cluster, to the other nodes' (Options.Relay).
func (m *Manager) publish(e Event) {
	e.Time = m.now()
	e.Node = m.opts.NodeName
	m.events.publish(e)
	if m.opts.Relay != nil {
		m.opts.Relay.Send(e)
	}
}
