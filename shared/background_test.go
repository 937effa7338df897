package shared

import (
	"context"
	"testing"
	"time"
)

// backgroundEnv records its RunBackground calls.
type backgroundEnv struct {
	Environment
	started chan struct{}
	ended   chan struct{}
}

func (e *backgroundEnv) RunBackground(ctx context.Context) {
	close(e.started)
	<-ctx.Done()
	close(e.ended)
}

func TestStartBackground(t *testing.T) {
	tests := []struct {
		name   string
		cookie string // the value of MagicCookieKey
		runs   bool
	}{
		{name: "started by a host", cookie: MagicCookieValue, runs: true},
		{name: "run by hand", cookie: "", runs: false},
		{name: "a wrong cookie", cookie: "nope", runs: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(MagicCookieKey, tt.cookie)
			env := &backgroundEnv{started: make(chan struct{}), ended: make(chan struct{})}
			stop := startBackground(env)
			if !tt.runs {
				stop()
				select {
				case <-env.started:
					t.Fatal("RunBackground ran")
				default:
				}
				return
			}
			deadline := time.After(10 * time.Second)
			select {
			case <-env.started:
			case <-deadline:
				t.Fatal("RunBackground did not start")
			}
			select {
			case <-env.ended:
				t.Fatal("RunBackground's ctx ended before stop")
			default:
			}
			stop()
			select {
			case <-env.ended:
			case <-deadline:
				t.Fatal("stop did not cancel RunBackground's ctx")
			}
		})
	}
}

// An environment without RunBackground gets nothing started; stop is safe
// to call.
func TestStartBackgroundNone(t *testing.T) {
	t.Setenv(MagicCookieKey, MagicCookieValue)
	stop := startBackground(struct{ Environment }{})
	stop()
}
