package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// healthFunc is a shared.HealthChecker made of a function.
type healthFunc func(ctx context.Context, envType string, config json.RawMessage) error

func (f healthFunc) Health(ctx context.Context, envType string, config json.RawMessage) error {
	return f(ctx, envType, config)
}

func TestCheckHealth(t *testing.T) {
	down := errors.New("daemon down")
	tests := []struct {
		name     string
		answer   func(ctx context.Context) error
		status   HealthStatus
		err      string // "" when none
		timedOut bool
	}{
		{"healthy", func(context.Context) error { return nil }, HealthHealthy, "", false},
		{"unsupported", func(context.Context) error { return shared.ErrUnsupported }, HealthUnknown, "", false},
		{"unhealthy", func(context.Context) error { return down }, HealthUnhealthy, "daemon down", false},
		{"no answer in time", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			HealthUnhealthy, "did not answer within 50ms", true},
		{"the plugin exited", func(ctx context.Context) error { <-ctx.Done(); return shared.ErrPluginExited },
			HealthUnhealthy, shared.ErrPluginExited.Error(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			hc := healthFunc(func(ctx context.Context, envType string, config json.RawMessage) error {
				if envType != "T" || string(config) != `{"a":1}` {
					t.Errorf("asked about %s %s", envType, config)
				}
				return tt.answer(ctx)
			})
			// The caller's ctx is already over: the check runs regardless.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			r := CheckHealth(ctx, hc, "T", json.RawMessage(`{"a":1}`), 50*time.Millisecond)
			if r.Status != tt.status || r.TimedOut != tt.timedOut || r.CheckedAt.Before(before) {
				t.Errorf("CheckHealth = %+v, want %s, timed out %v", r, tt.status, tt.timedOut)
			}
			switch {
			case tt.err == "" && r.Err != nil:
				t.Errorf("Err = %v, want none", r.Err)
			case tt.err != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.err)):
				t.Errorf("Err = %v, want %q", r.Err, tt.err)
			}
			if tt.timedOut && !errors.Is(r.Err, shared.ErrUnavailable) {
				t.Errorf("a timeout's Err %v does not wrap ErrUnavailable", r.Err)
			}
		})
	}
}

// healthEnv is an environment that reports its health, one way or another.
type healthEnv struct {
	fakeenv.Env
	checker  shared.HealthChecker // nil: not a HealthChecker
	reporter func() HealthReport  // nil: not a HealthReporter
}

type checkingEnv struct{ *healthEnv }

func (e checkingEnv) Health(ctx context.Context, envType string, config json.RawMessage) error {
	return e.checker.Health(ctx, envType, config)
}

type reportingEnv struct{ *healthEnv }

func (e reportingEnv) ReportHealth(context.Context, string, json.RawMessage) HealthReport {
	return e.reporter()
}

// Manager.EnvironmentHealth prefers a HealthReporter's cached answer, asks
// a plain HealthChecker itself, and says unknown for an environment that
// reports nothing.
func TestEnvironmentHealthPaths(t *testing.T) {
	checkedAt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		env    shared.Environment
		status HealthStatus
		reason string
		at     time.Time // zero: any time
	}{
		{"reporter", reportingEnv{&healthEnv{reporter: func() HealthReport {
			return HealthReport{Status: HealthUnhealthy, Err: errors.New("cached answer"), CheckedAt: checkedAt}
		}}}, HealthUnhealthy, "cached answer", checkedAt},
		{"checker", checkingEnv{&healthEnv{checker: healthFunc(func(context.Context, string, json.RawMessage) error {
			return errors.New("asked now")
		})}}, HealthUnhealthy, "asked now", time.Time{}},
		{"neither", &fakeenv.Env{}, HealthUnknown, "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.Plugins = StaticEnvironments{"FAKE": tt.env} })
			got, err := h.m.EnvironmentHealth(t.Context(), "fake")
			if err != nil {
				t.Fatal(err)
			}
			if got.EnvironmentID != "fake" || got.Type != "FAKE" || got.Status != tt.status || got.Reason != tt.reason ||
				got.CheckedAt.IsZero() || !tt.at.IsZero() && !got.CheckedAt.Equal(tt.at) {
				t.Errorf("EnvironmentHealth = %+v, want %s %q", got, tt.status, tt.reason)
			}
		})
	}
}
