package core

import "github.com/prometheus/client_golang/prometheus"

// metrics are the manager's Prometheus instruments. They always exist, so
// the code that updates them never checks; they are exported only when
// Options.Registerer is set.
type metrics struct {
	live          prometheus.Gauge // sessions whose process runs; see also sessionsCollector
	created       prometheus.Counter
	createFailed  prometheus.Counter
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	clients       prometheus.Gauge
	resyncs       prometheus.Counter
	clientDrops   prometheus.Counter
	displaced     prometheus.Counter
	storeErrors   prometheus.Counter
	storeLatency  prometheus.Histogram
	eventsDropped prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ptyhost_sessions_live", Help: "Sessions whose process runs.",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_sessions_created_total", Help: "Sessions started.",
		}),
		createFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_sessions_create_failed_total", Help: "Session creations that failed.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_input_bytes_total", Help: "Input bytes written to terminals.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_output_bytes_total", Help: "Output bytes read from terminals.",
		}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ptyhost_clients_attached", Help: "Clients attached to sessions.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_client_resyncs_total", Help: "Times a slow client lost output and was reset.",
		}),
		clientDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_client_drops_total", Help: "Clients disconnected for accepting no output for too long.",
		}),
		displaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_viewers_displaced_total", Help: "Viewers closed to make room for a writing client under a session's client limit.",
		}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ptyhost_store_write_seconds", Help: "Time a store write took (each may stand for several merged changes).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_store_write_errors_total", Help: "Failed store writes (they are retried).",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_events_dropped_total", Help: "Events a slow subscriber missed.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer, mgr *Manager) error {
	for _, c := range []prometheus.Collector{
		m.live, m.created, m.createFailed, m.bytesIn, m.bytesOut,
		m.clients, m.resyncs, m.clientDrops, m.displaced, m.storeErrors, m.storeLatency, m.eventsDropped,
		sessionsCollector{mgr},
	} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// sessionsCollector counts the manager's sessions by environment type and
// status when scraped, so the figures are always those of the session map.
type sessionsCollector struct{ m *Manager }

var sessionsDesc = prometheus.NewDesc("ptyhost_sessions",
	"Sessions in memory (running, or exited and lingering), by environment type and status.",
	[]string{"type", "status"}, nil)

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sessionsDesc }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ typ, status string }
	counts := map[key]int{}
	c.m.mu.Lock()
	all := make([]*session, 0, len(c.m.sessions))
	for _, s := range c.m.sessions {
		all = append(all, s)
	}
	c.m.mu.Unlock()
	for _, s := range all {
		s.mu.Lock()
		if s.state != stateStarting && s.state != stateDestroyed {
			counts[key{s.envType, string(s.rec.Status)}]++
		}
		s.mu.Unlock()
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), k.typ, k.status)
	}
}
