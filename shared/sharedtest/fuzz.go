package sharedtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// FuzzConfig fuzzes a plugin's environment config decoder with the seeds
// already added to f. For every input, parse must not panic, and either
// refuse it with an error that wraps shared.ErrInvalidConfig and says more
// than that, or accept it; an accepted config, written back in the form
// parse reads, must be accepted again and parse to the same config
// (compared as JSON). writeBack is json.Marshal when nil; a decoder whose
// input form differs from its parsed form (defaults filled in, durations
// as text) passes its own.
//
//	func FuzzParseConfig(f *testing.F) {
//		f.Add([]byte(`{"shell":"/bin/sh"}`))
//		sharedtest.FuzzConfig(f, parseConfig, nil)
//	}
func FuzzConfig[C any](f *testing.F, parse func(json.RawMessage) (C, error), writeBack func(testing.TB, C) []byte) {
	f.Helper()
	if writeBack == nil {
		writeBack = func(t testing.TB, cfg C) []byte {
			b, err := json.Marshal(cfg)
			if err != nil {
				t.Fatalf("accepted, but does not encode: %v", err)
			}
			return b
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := parse(raw)
		if err != nil {
			if !errors.Is(err, shared.ErrInvalidConfig) {
				t.Fatalf("%q: error %q does not wrap shared.ErrInvalidConfig", raw, err)
			}
			if err.Error() == shared.ErrInvalidConfig.Error() {
				t.Fatalf("%q: error %q says nothing more", raw, err)
			}
			return
		}
		enc, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("%q: accepted, but does not encode: %v", raw, err)
		}
		input := writeBack(t, cfg)
		again, err := parse(input)
		if err != nil {
			t.Fatalf("%q: accepted, written back as %s, refused: %v", raw, input, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc2, enc) {
			t.Fatalf("%q: parsed as %s; written back as %s, parsed as %s", raw, enc, input, enc2)
		}
	})
}
