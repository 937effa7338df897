package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// HealthStatus says whether sessions can start in an environment.
type HealthStatus string

// Health statuses.
const (
	HealthHealthy   HealthStatus = "healthy"
	HealthUnhealthy HealthStatus = "unhealthy"
	// HealthUnknown: the environment's plugin does not report health.
	HealthUnknown HealthStatus = "unknown"
)

// DefaultHealthTimeout bounds one health check of an environment whose
// Dispatcher sets no bound of its own.
const DefaultHealthTimeout = 2 * time.Second

// EnvironmentHealth is what an environment's plugin says about it: the
// Docker daemon is down, the SSH host is unreachable.
type EnvironmentHealth struct {
	EnvironmentID string       `json:"environment_id"`
	Type          string       `json:"type"`
	Status        HealthStatus `json:"status"`
	// Reason says why an environment is unhealthy.
	Reason string `json:"reason,omitempty"`
	// CheckedAt is when the plugin was asked; answers are cached briefly.
	CheckedAt time.Time `json:"checked_at"`
}

// HealthReport is one health check's outcome.
type HealthReport struct {
	Status HealthStatus
	// Err says why the environment is unhealthy.
	Err error
	// CheckedAt is when the check ended.
	CheckedAt time.Time
	// TimedOut: unhealthy only because the plugin did not answer in time,
	// which does not keep sessions from starting (they have their own
	// timeouts, and a slow host is not a dead one).
	TimedOut bool
}

// HealthReporter is implemented by environments that check their health
// with a time and keep the answers, as the environments of
// core/pluginhost do; EnvironmentHealth prefers it to
// shared.HealthChecker.
type HealthReporter interface {
	ReportHealth(ctx context.Context, envType string, config json.RawMessage) HealthReport
}

// CheckHealth asks hc about the environment (envType, config) once. The
// check runs under timeout, not under ctx's end (only ctx's values are
// used): a plugin that does not answer within timeout makes the
// environment unhealthy with TimedOut set, one that does not report health
// (shared.ErrUnsupported) makes it unknown.
func CheckHealth(ctx context.Context, hc shared.HealthChecker, envType string, config json.RawMessage, timeout time.Duration) HealthReport {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := hc.Health(ctx, envType, config)
	res := HealthReport{CheckedAt: time.Now()}
	switch {
	case err == nil:
		res.Status = HealthHealthy
	case errors.Is(err, shared.ErrUnsupported):
		res.Status = HealthUnknown
	case (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) && !errors.Is(err, shared.ErrPluginExited):
		// Our deadline, whichever side noticed it first.
		res.Status, res.Err = HealthUnhealthy, fmt.Errorf("%w: the health check did not answer within %v", shared.ErrUnavailable, timeout)
		res.TimedOut = true
	default:
		res.Status, res.Err = HealthUnhealthy, err
	}
	return res
}

// environmentHealth asks env (through its cache, when it has one) about
// the environment.
func environmentHealth(ctx context.Context, env shared.Environment, envType string, config json.RawMessage) HealthReport {
	if r, ok := env.(HealthReporter); ok {
		return r.ReportHealth(ctx, envType, config)
	}
	hc, ok := env.(shared.HealthChecker)
	if !ok {
		return HealthReport{Status: HealthUnknown, CheckedAt: time.Now()}
	}
	return CheckHealth(ctx, hc, envType, config, DefaultHealthTimeout)
}
