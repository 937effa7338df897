package core

import "github.com/prometheus/client_golang/prometheus"

// metrics are the manager's Prometheus instruments. They always exist, so
// the code that updates them never checks; they are exported only when
// Options.Registerer is set.
type metrics struct {
	live          prometheus.Gauge
	created       prometheus.Counter
	createFailed  prometheus.Counter
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	clients       prometheus.Gauge
	resyncs       prometheus.Counter
	storeErrors   prometheus.Counter
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
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_store_write_errors_total", Help: "Failed store writes (they are retried).",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ptyhost_events_dropped_total", Help: "Events a slow subscriber missed.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		m.live, m.created, m.createFailed, m.bytesIn, m.bytesOut,
		m.clients, m.resyncs, m.storeErrors, m.eventsDropped,
	} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
