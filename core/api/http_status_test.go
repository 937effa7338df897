package api

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// TestErrorIdentity pins which of core's sentinels are shared's: the
// manager's invalid argument and a plugin's are one error, while the
// manager's not-found and already-exists are its own.
func TestErrorIdentity(t *testing.T) {
	if core.ErrInvalidArgument != shared.ErrInvalidArgument {
		t.Error("core.ErrInvalidArgument is not shared.ErrInvalidArgument")
	}
	if got := fmt.Errorf("%w: id %q", core.ErrInvalidArgument, "x").Error(); got != `invalid argument: id "x"` {
		t.Errorf("message %q, want %q", got, `invalid argument: id "x"`)
	}
	for _, tt := range []struct {
		name       string
		core, plug error
	}{
		{"ErrSessionNotFound", core.ErrSessionNotFound, shared.ErrSessionNotFound},
		{"ErrAlreadyExists", core.ErrAlreadyExists, shared.ErrAlreadyExists},
	} {
		if errors.Is(tt.core, tt.plug) || errors.Is(tt.plug, tt.core) {
			t.Errorf("core.%s and shared.%s are one error; a plugin's must not answer as the manager's", tt.name, tt.name)
		}
	}
}

func TestStatusOf(t *testing.T) {
	spawn := func(err error) error { return fmt.Errorf("%w: %w", core.ErrSpawn, err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"body too large", fmt.Errorf("request body: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{"body too slow", fmt.Errorf("%w: %v", errBodyTimeout, os.ErrDeadlineExceeded), http.StatusRequestTimeout},
		// Another deadline (a database's, a plugin's) is not the client's.
		{"store timeout", fmt.Errorf("%w: %w", core.ErrStoreUnavailable, os.ErrDeadlineExceeded), http.StatusServiceUnavailable},
		{"manager's invalid argument", fmt.Errorf("%w: bad id", core.ErrInvalidArgument), http.StatusBadRequest},
		{"plugin's invalid argument at spawn", spawn(fmt.Errorf("%w: no such dir", shared.ErrInvalidArgument)), http.StatusBadRequest},
		{"plugin's invalid config", fmt.Errorf("%w: %w", core.ErrInvalidArgument, shared.ErrInvalidConfig), http.StatusBadRequest},
		{"bare invalid config", shared.ErrInvalidConfig, http.StatusBadRequest},
		{"permission denied", spawn(shared.ErrPermissionDenied), http.StatusForbidden},
		{"session not found", fmt.Errorf("%w: %q", core.ErrSessionNotFound, "s"), http.StatusNotFound},
		{"environment not found", core.ErrEnvironmentNotFound, http.StatusNotFound},
		{"already exists", core.ErrAlreadyExists, http.StatusConflict},
		{"environment in use", core.ErrEnvironmentInUse, http.StatusConflict},
		{"session ended (restart)", fmt.Errorf("%w: session \"x\"", core.ErrSessionEnded), http.StatusConflict},
		{"restart in progress", core.ErrRestartInProgress, http.StatusConflict},
		{"plugin kept a session at spawn", spawn(shared.ErrAlreadyExists), http.StatusBadGateway},
		{"plugin lost a session at spawn", spawn(shared.ErrSessionNotFound), http.StatusBadGateway},
		{"environment unavailable", spawn(shared.ErrUnavailable), http.StatusServiceUnavailable},
		{"manager closed", core.ErrClosed, http.StatusServiceUnavailable},
		{"store unavailable", fmt.Errorf("%w: down", core.ErrStoreUnavailable), http.StatusServiceUnavailable},
		{"session on another node", fmt.Errorf("%w: session x runs on node b; try again", core.ErrOtherNode), http.StatusServiceUnavailable},
		{"spawn failed", spawn(errors.New("the daemon said no")), http.StatusBadGateway},
		{"spawn timed out", spawn(fmt.Errorf("%w: not started within 1m0s", core.ErrPluginTimeout)), http.StatusGatewayTimeout},
		{"config validation timed out", fmt.Errorf("validating the config: %w", core.ErrPluginTimeout), http.StatusGatewayTimeout},
		{"destroyed while starting", fmt.Errorf("%w: session \"x\" was destroyed while starting", core.ErrSessionNotFound), http.StatusNotFound},
		{"anything else", errors.New("boom"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.err); got != tt.want {
				t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
