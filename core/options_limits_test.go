package core

import (
	"errors"
	"testing"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// TestOptionsValidateScrollbackLimit: a scrollback larger than a plugin
// keeps is refused up front, instead of a manager that starts and then
// fails every create.
func TestOptionsValidateScrollbackLimit(t *testing.T) {
	for name, tt := range map[string]struct {
		bytes int
		fail  bool
	}{
		"default":        {bytes: 0},
		"least":          {bytes: 4 << 10},
		"most":           {bytes: MaxScrollbackBytes},
		"one byte more":  {bytes: MaxScrollbackBytes + 1, fail: true},
		"2 GiB":          {bytes: 2 << 30, fail: true},
		"too small":      {bytes: 4<<10 - 1, fail: true},
		"negative":       {bytes: -1, fail: true},
		"most negative":  {bytes: -1 << 62, fail: true},
		"overflowed int": {bytes: 1 << 62, fail: true},
	} {
		t.Run(name, func(t *testing.T) {
			o := Options{Store: newMemStore(), Plugins: fakePlugins{}, ScrollbackBytes: tt.bytes}
			if err := o.Validate(); (err != nil) != tt.fail {
				t.Fatalf("Validate with ScrollbackBytes %d: %v, want failure %v", tt.bytes, err, tt.fail)
			}
		})
	}
}

// TestMaxScrollbackBytesIsThePluginsLimit keeps MaxScrollbackBytes equal
// to the SDK's own bound, which is unexported: through the real gRPC glue,
// a spawn with MaxScrollbackBytes is taken and one byte more refused.
func TestMaxScrollbackBytesIsThePluginsLimit(t *testing.T) {
	fake := &fakeenv.Env{}
	env := sharedtest.Serve(t, fake)
	req := shared.SpawnRequest{SessionID: "most", Size: shared.Size{Cols: 80, Rows: 24}, ScrollbackBytes: MaxScrollbackBytes}
	pty, err := env.Spawn(t.Context(), req)
	if err != nil {
		t.Fatalf("a spawn with MaxScrollbackBytes (%d): %v", MaxScrollbackBytes, err)
	}
	fake.Last(t).End(shared.ExitStatus{})
	_ = pty.Close()
	req.SessionID, req.ScrollbackBytes = "more", MaxScrollbackBytes+1
	if pty, err := env.Spawn(t.Context(), req); !errors.Is(err, shared.ErrInvalidArgument) {
		if err == nil {
			_ = pty.Close()
		}
		t.Fatalf("a spawn with MaxScrollbackBytes+1: %v, want shared.ErrInvalidArgument", err)
	}
}
