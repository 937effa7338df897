package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// restBodies are seeds for the REST request decoders: valid bodies of each
// request type and the ways a body goes wrong.
var restBodies = []string{
	`{"id":"s1","environment_id":"host","command":["/bin/sh","-c","echo hi"],"env":{"A":"b"},"cols":80,"rows":24}`,
	`{"environment_id":"host","project_id":"p","branch_name":"main","worktree_path":"/tmp"}`,
	`{"id":"e1","name":"Build box","type":"DOCKER","config":{"image":"debian:12","mounts":[{"source":"/a","target":"/b"}]}}`,
	`{"id":"host","name":"Host","type":"HOST","config":null}`,
	`{"name":"renamed","config":{"shell":"/bin/bash"},"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05.123456789+02:00"}`,
	`{"id":"e1","type":"SSH","config":{"host":"example.com","jump":"me@bastion:2222"}}`,
	`{"command":["a\u0000b"],"env":{"K\u0000":"v"},"cols":-1,"rows":1e3}`,
	`{"cols":99999999999999999999}`,
	`{"created_at":"not a time"}`,
	`{"config":{"a":}`,
	`{"bogus":1}`,
	`{"id":1}`,
	`{} {}`,
	`{}garbage`,
	`[]`,
	`null`,
	`"string"`,
	` `,
	``,
	"{\"id\":\"\xff\xfe\"}",
	`{"id":"\ud800"}`,
}

// FuzzDecodeRequests feeds arbitrary bodies to decode with each REST
// request type, limited as the server limits them. It must never panic;
// every error wraps ErrInvalidArgument (a 400) and says what is wrong, but
// for a body beyond maxBodyBytes (a 413); an accepted body's value
// re-encodes to JSON that decodes to the same value.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range restBodies {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"id":"` + strings.Repeat("a", maxBodyBytes) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, body, func() any { return new(sessionRequest) })
		checkDecode(t, body, func() any { return new(environmentRequest) })
		checkDecode(t, body, func() any { return new(environmentUpdateRequest) })
	})
}

// checkDecode decodes body into a new value of one request type and checks
// the error or the round trip.
func checkDecode(t *testing.T, body []byte, newReq func() any) {
	t.Helper()
	req := newReq()
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBodyBytes) // as the server does
	err := decode(r, req)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) && len(body) > maxBodyBytes {
			return // a 413
		}
		if !errors.Is(err, core.ErrInvalidArgument) {
			t.Fatalf("%T from %q: error %q does not wrap ErrInvalidArgument", req, body, err)
		}
		if err.Error() == core.ErrInvalidArgument.Error() {
			t.Fatalf("%T from %q: error %q says nothing more", req, body, err)
		}
		return
	}
	enc, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("%T from %q: accepted, but does not encode: %v", req, body, err)
	}
	again := newReq()
	if err := decode(httptest.NewRequest("POST", "/", bytes.NewReader(enc)), again); err != nil {
		t.Fatalf("%T from %q: accepted, re-encoded as %s, refused: %v", req, body, enc, err)
	}
	// Compared as JSON: a time's zone and a raw config's spacing may
	// differ in memory, not in meaning.
	if enc2, err := json.Marshal(again); err != nil || !bytes.Equal(enc2, enc) {
		t.Fatalf("%T from %q: encoded as %s, then as %s (%v)", req, body, enc, enc2, err)
	}
}
