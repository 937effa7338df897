package fakeenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

func spawn(t *testing.T, e *fakeenv.Env, id string) *fakeenv.PTY {
	t.Helper()
	got, err := e.Spawn(t.Context(), shared.SpawnRequest{SessionID: id})
	if err != nil {
		t.Fatalf("Spawn(%s): %v", id, err)
	}
	p, ok := got.(*fakeenv.PTY)
	if !ok {
		t.Fatalf("Spawn(%s) returned a %T", id, got)
	}
	return p
}

func TestEnvRemembersWhatItSpawns(t *testing.T) {
	var e fakeenv.Env
	if info, err := e.Info(t.Context()); err != nil || len(info.Types) != 1 || info.Types[0] != "FAKE" {
		t.Errorf("Info = %+v, %v; want type FAKE", info, err)
	}
	a, b := spawn(t, &e, "a"), spawn(t, &e, "b")
	if a.Req.SessionID != "a" || e.Count() != 2 || e.Last(t) != b {
		t.Errorf("after two spawns: req %+v, count %d", a.Req, e.Count())
	}
	if got := e.Spawned(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Spawned() = %v", got)
	}

	boom := errors.New("the daemon said no")
	e.SetSpawn(func(context.Context, shared.SpawnRequest) (shared.PTY, error) { return nil, boom })
	if _, err := e.Spawn(t.Context(), shared.SpawnRequest{}); !errors.Is(err, boom) {
		t.Errorf("Spawn with SetSpawn: %v, want %v", err, boom)
	}
	own := fakeenv.NewPTY(shared.SpawnRequest{SessionID: "own"})
	e.SetSpawn(func(context.Context, shared.SpawnRequest) (shared.PTY, error) { e.Add(own); return own, nil })
	if spawn(t, &e, "c") != own || e.Last(t) != own || e.Count() != 3 {
		t.Errorf("a PTY passed to Add is not the last spawned (count %d)", e.Count())
	}
	e.SetSpawn(nil)
	if p := spawn(t, &e, "d"); p.Req.SessionID != "d" || e.Count() != 4 {
		t.Errorf("SetSpawn(nil) did not restore the default: %+v, count %d", p.Req, e.Count())
	}
}

func TestEnvValidate(t *testing.T) {
	var e fakeenv.Env
	if err := e.ValidateConfig(t.Context(), "FAKE", json.RawMessage(`{"x":1}`)); err != nil {
		t.Errorf("default ValidateConfig: %v", err)
	}
	e.SetValidate(func(cfg json.RawMessage) error {
		if string(cfg) == `{"bad":true}` {
			return shared.ErrInvalidConfig
		}
		return nil
	})
	if err := e.ValidateConfig(t.Context(), "FAKE", json.RawMessage(`{"bad":true}`)); !errors.Is(err, shared.ErrInvalidConfig) {
		t.Errorf("ValidateConfig(bad): %v", err)
	}
	if err := e.ValidateConfig(t.Context(), "FAKE", json.RawMessage(`{}`)); err != nil {
		t.Errorf("ValidateConfig({}): %v", err)
	}
}

func TestPTYOutputThenExit(t *testing.T) {
	p := fakeenv.NewPTY(shared.SpawnRequest{})
	type result struct {
		out []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		out, err := io.ReadAll(p)
		read <- result{out, err}
	}()
	p.Output(t, []byte("hello "))
	if _, err := p.WriteOutput([]byte("world")); err != nil {
		t.Fatal(err)
	}
	p.End(shared.ExitStatus{Code: 3})
	p.End(shared.ExitStatus{Code: 4}) // too late: the first exit counts
	if r := <-read; r.err != nil || string(r.out) != "hello world" {
		t.Errorf("read %q, %v; want the output, then EOF", r.out, r.err)
	}
	if st, err := p.Wait(t.Context()); err != nil || st.Code != 3 {
		t.Errorf("Wait = %+v, %v; want code 3", st, err)
	}
	if _, err := p.WriteOutput([]byte("late")); err == nil {
		t.Error("output after the exit succeeded")
	}
}

func TestPTYWaitHonoursCtx(t *testing.T) {
	p := fakeenv.NewPTY(shared.SpawnRequest{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on a running child: %v, want the ctx's error", err)
	}
}

func TestPTYCrash(t *testing.T) {
	p := fakeenv.NewPTY(shared.SpawnRequest{})
	p.Crash()
	if _, err := p.Read(make([]byte, 8)); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("Read after Crash: %v, want ErrPluginExited", err)
	}
}

func TestPTYInputResizeKillClose(t *testing.T) {
	p := fakeenv.NewPTY(shared.SpawnRequest{})
	typed := []byte("ls\r")
	if n, err := p.Write(typed); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	typed[0] = 'X' // Input holds a copy
	if got := <-p.Input(); string(got) != "ls\r" {
		t.Errorf("Input = %q", got)
	}
	if err := p.Resize(t.Context(), shared.Size{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	if got := <-p.Resizes(); got != (shared.Size{Cols: 100, Rows: 30}) {
		t.Errorf("Resizes = %+v", got)
	}

	p.KillErr = errors.New("kill failed")
	p.CloseErr = errors.New("cleanup failed")
	if err := p.Kill(t.Context()); err != p.KillErr {
		t.Errorf("Kill = %v, want KillErr", err)
	}
	if err := p.Close(); err != p.CloseErr {
		t.Errorf("Close = %v, want CloseErr", err)
	}
	if st, err := p.Wait(t.Context()); err != nil || st.Code != 129 || st.Signal != "SIGHUP" {
		t.Errorf("Wait after Kill = %+v, %v; want 129 SIGHUP", st, err)
	}
	p.Kill(t.Context())
	if kills, closes := p.Counts(); kills != 2 || closes != 1 {
		t.Errorf("Counts = %d kills, %d closes; want 2, 1", kills, closes)
	}
}

func TestUnreadPTYHoldsInputUntilRelease(t *testing.T) {
	p := fakeenv.NewUnreadPTY(shared.SpawnRequest{})
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write([]byte("held"))
		wrote <- err
	}()
	<-p.Writing()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Resize(ctx, shared.Size{Cols: 80, Rows: 24}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("resize behind held input: %v, want the context's end", err)
	}
	select {
	case err := <-wrote:
		t.Fatalf("the write went through before Release: %v", err)
	default:
	}
	p.Release()
	p.Release()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if got := string(<-p.Input()); got != "held" {
		t.Errorf("input %q", got)
	}
	if err := p.Resize(context.Background(), shared.Size{Cols: 80, Rows: 24}); err != nil {
		t.Fatal(err)
	}
}
