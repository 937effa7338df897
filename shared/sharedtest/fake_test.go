package sharedtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/internal/leakcheck"
	"github.com/ptyhost/ptyhost/shared"
)

// fakePluginEnv, set to 1, makes the test binary serve fakeEnv as a plugin
// (for Launch) instead of running the tests.
const fakePluginEnv = "PTYHOST_SHAREDTEST_FAKE_PLUGIN"

// fakePluginPIDFile, if set, names a file the fake plugin writes its pid
// to.
const fakePluginPIDFile = "PTYHOST_SHAREDTEST_FAKE_PID_FILE"

func TestMain(m *testing.M) {
	if os.Getenv(fakePluginEnv) == "1" {
		if p := os.Getenv(fakePluginPIDFile); p != "" {
			if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
				panic(err)
			}
		}
		shared.Serve(newFakeEnv())
		os.Exit(0)
	}
	leakcheck.Main(m)
}

// fakeEnv is a tiny environment of type FAKE. A session prints
// "hello <session id>", echoes its input, and exits with the config's code
// at the first carriage return. Its config is {"code": N}; anything else is
// invalid. The ids of closed sessions are sent on closed.
type fakeEnv struct {
	closed chan string
}

var (
	_ shared.Environment     = (*fakeEnv)(nil)
	_ shared.ConfigValidator = (*fakeEnv)(nil)
)

func newFakeEnv() *fakeEnv { return &fakeEnv{closed: make(chan string, 16)} }

func (e *fakeEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{
		Name:         "fake",
		Version:      "1.0.0",
		Types:        []string{"FAKE"},
		Capabilities: []string{shared.CapValidateConfig},
	}, nil
}

type fakeConfig struct {
	Code int `json:"code"`
}

func parseFakeConfig(raw json.RawMessage) (fakeConfig, error) {
	var cfg fakeConfig
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%w: %w", shared.ErrInvalidConfig, err)
	}
	return cfg, nil
}

func (e *fakeEnv) ValidateConfig(_ context.Context, _ string, raw json.RawMessage) error {
	_, err := parseFakeConfig(raw)
	return err
}

func (e *fakeEnv) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	cfg, err := parseFakeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	p := &fakePTY{id: req.SessionID, env: e, code: cfg.Code, r: r, w: w, exited: make(chan struct{})}
	go func() { _, _ = fmt.Fprintf(w, "hello %s\n", req.SessionID) }()
	return p, nil
}

// fakePTY is one fake session: output goes through a pipe, which is closed
// (io.EOF after all output) when the session ends.
type fakePTY struct {
	id   string
	env  *fakeEnv
	code int
	r    *io.PipeReader
	w    *io.PipeWriter

	endOnce sync.Once
	status  shared.ExitStatus // written before exited is closed
	exited  chan struct{}

	closeOnce sync.Once
}

func (p *fakePTY) Read(b []byte) (int, error) { return p.r.Read(b) }

// Write echoes b; a carriage return ends the session.
func (p *fakePTY) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if strings.Contains(string(b), "\r") {
		p.end(shared.ExitStatus{Code: p.code})
	}
	return n, err
}

func (p *fakePTY) end(st shared.ExitStatus) {
	p.endOnce.Do(func() {
		p.status = st
		close(p.exited)
		_ = p.w.Close()
	})
}

func (p *fakePTY) Resize(context.Context, shared.Size) error { return nil }

func (p *fakePTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exited:
		return p.status, nil
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
}

func (p *fakePTY) Kill(context.Context) error {
	p.end(shared.ExitStatus{Code: 128 + 9, Signal: "SIGKILL"})
	return nil
}

func (p *fakePTY) Close() error {
	p.closeOnce.Do(func() {
		p.end(shared.ExitStatus{Code: 128 + 9, Signal: "SIGKILL"})
		_ = p.r.Close()
		p.env.closed <- p.id
	})
	return nil
}
