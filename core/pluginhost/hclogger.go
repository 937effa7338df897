package pluginhost

import (
	"context"
	"io"
	"log"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hcLogger is an hclog.Logger that logs to a *slog.Logger: go-plugin logs
// through it, including every line a plugin writes to stderr.
type hcLogger struct {
	l    *slog.Logger
	name string
	args []any // from With
	// quiet, shared by the loggers derived with With and Named, turns
	// every record into a debug one: once the server has let a plugin
	// process go (Detach), go-plugin's view of it — "plugin process
	// exited" — is not the process's.
	quiet *atomic.Bool
	// budget, shared by a Named logger and those derived from it, bounds
	// how many records a second it logs: go-plugin logs every line a
	// plugin writes to stderr (and stdout) through Named loggers, and a
	// plugin must not fill the server's log. Nil: no bound (go-plugin's
	// own records).
	budget *logBudget
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger, name string) *hcLogger {
	return &hcLogger{l: l, name: name, quiet: new(atomic.Bool)}
}

// mute logs every later record of h and the loggers derived from it at
// debug level.
func (h *hcLogger) mute() { h.quiet.Store(true) }

// slogLevel maps an hclog level to slog; slog has no trace, so it is below
// debug.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	sl := slogLevel(level)
	if h.quiet.Load() {
		sl = min(sl, slog.LevelDebug)
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, sl) {
		return
	}
	if h.budget != nil {
		ok, dropped := h.budget.take()
		if !ok {
			return
		}
		if dropped > 0 {
			h.l.Warn("a plugin logged more than its share; lines were dropped", "logger", h.name,
				"dropped", dropped, "lines_per_second", logRate)
		}
	}
	attrs := make([]any, 0, len(h.args)+len(args)+2)
	if h.name != "" {
		attrs = append(attrs, "logger", h.name)
	}
	attrs = appendArgs(attrs, h.args)
	attrs = appendArgs(attrs, args)
	h.l.Log(ctx, sl, msg, attrs...)
}

// appendArgs appends go-plugin's key-value pairs args to attrs. go-plugin
// names the plugin's executable "plugin", a key the server's logger
// already gives the plugin's name (supervised.log): it becomes
// "plugin_path", so that a JSON log has no key twice. go-plugin's
// "timestamp", the plugin's own, is left out: slog has its own.
func appendArgs(attrs, args []any) []any {
	for i := 0; i < len(args); i += 2 {
		k, _ := args[i].(string)
		switch {
		case i+1 >= len(args):
			attrs = append(attrs, args[i])
		case k == "timestamp":
		case k == "plugin":
			attrs = append(attrs, "plugin_path", args[i+1])
		default:
			attrs = append(attrs, args[i], args[i+1])
		}
	}
	return attrs
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcLogger) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}

func (h *hcLogger) ImpliedArgs() []any { return slices.Clone(h.args) }

func (h *hcLogger) With(args ...any) hclog.Logger {
	return &hcLogger{l: h.l, name: h.name, args: append(slices.Clone(h.args), args...), quiet: h.quiet, budget: h.budget}
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	budget := h.budget
	if budget == nil {
		budget = newLogBudget(time.Now)
	}
	return &hcLogger{l: h.l, name: name, args: h.args, quiet: h.quiet, budget: budget}
}

// A plugin's lines are logged at logRate a second, after a burst of
// logBurst; the rest are dropped and counted.
const (
	logRate  = 100
	logBurst = 1000
)

// logBudget is a token bucket of log records.
type logBudget struct {
	now     func() time.Time
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

func newLogBudget(now func() time.Time) *logBudget {
	return &logBudget{now: now, tokens: logBurst, last: now()}
}

// take reports whether a record may be logged now and, when it may, how
// many were dropped since the last that was.
func (b *logBudget) take() (ok bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(logBurst, b.tokens+now.Sub(b.last).Seconds()*logRate)
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		return false, 0
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}

// SetLevel does nothing: the slog handler decides.
func (h *hcLogger) SetLevel(hclog.Level) {}

// GetLevel returns the lowest level the slog handler takes. go-plugin uses
// it to skip parsing plugin log lines nobody will see.
func (h *hcLogger) GetLevel() hclog.Level {
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(level) {
			return level
		}
	}
	return hclog.Off
}

func (h *hcLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
