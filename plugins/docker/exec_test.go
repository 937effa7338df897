package main

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// execTargetConfig adds a running container "dev" to fd, with the environment
// its execs inherit and the paths that exist in it, and returns a config
// execing into it with extra fields.
func execTargetConfig(t *testing.T, fd *fakeDaemon, env []string, paths []string, extra map[string]any) json.RawMessage {
	t.Helper()
	c := &fakeContainer{ID: "dev-id", Name: "dev", Running: true, Env: env, Paths: map[string]os.FileMode{}}
	for _, p := range paths {
		c.Paths[p] = 0o755
	}
	fd.addContainer(c)
	cfg := map[string]any{"container": "dev", "host": fd.host}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spawnExec starts an exec session through a new Docker on fd.
func spawnExec(t *testing.T, ctx context.Context, req shared.SpawnRequest) shared.PTY {
	t.Helper()
	e := New(nil)
	t.Cleanup(e.Close)
	p, err := e.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Kill and Close end the processes a session left in the shared container
// whether or not the exec'd process still runs: Docker kills nothing when
// an exec ends, so a nohup job would outlive the session. Each hangs up,
// asks whether any is left (signal 0) within the grace, and kills what
// is; it stops at the first answer that none is.
func TestExecHangupEndsWhatOutlivesTheExec(t *testing.T) {
	tests := []struct {
		name string
		// execEnds ends the exec'd process before the hangup.
		execEnds bool
		// job is a background process of the session: none, one that
		// ends on SIGHUP, or one that ignores it.
		job      string
		kill     bool // Kill (with a short grace) before Close
		wantKill bool // the hangup escalates to SIGKILL
	}{
		{"exec ended, nohup job left, Close", true, "ignores HUP", false, true},
		{"exec ended, job obeys the hangup, Close", true, "obeys HUP", false, false},
		{"exec ended, nothing left, Close", true, "", false, false},
		{"exec ended, nohup job left, Kill", true, "ignores HUP", true, true},
		{"exec runs, nohup job left, Kill", false, "ignores HUP", true, true},
		{"exec runs, no job, Kill", false, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := startFakeDaemon(t)
			ctx := testContext(t, 30*time.Second)
			cfg := execTargetConfig(t, fd, nil, []string{"/bin/sh"}, nil)
			p := spawnExec(t, ctx, request("hangup", cfg))
			id, token, _ := fd.sessionExec(t)
			if token == "" {
				t.Fatalf("the session's exec has no %s", execTokenVar)
			}
			if tt.job != "" {
				fd.addProc(token, tt.job == "ignores HUP")
			}
			if tt.execEnds {
				fd.endExec(id, 0)
				if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
					t.Fatalf("Wait = %+v, %v; want code 0", st, err)
				}
			}
			start := time.Now()
			if tt.kill {
				// Kill's grace is half the time left to ctx's deadline.
				kctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
				err := p.Kill(kctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.kill && time.Since(start) > killGrace {
				t.Errorf("Kill and Close took %v, want less than Close's own grace %v: Kill's hangup ended them", time.Since(start), killGrace)
			}
			sent := fd.signalsSent()
			if len(sent) == 0 || sent[0] != "HUP" {
				t.Fatalf("helper signals %q, want a SIGHUP first", sent)
			}
			if got := slices.Contains(sent, "KILL"); got != tt.wantKill {
				t.Errorf("helper signals %q: SIGKILL sent %v, want %v", sent, got, tt.wantKill)
			}
			if n := fd.alive(token); n != 0 {
				t.Errorf("%d process(es) of the session left after Close (signals %q)", n, sent)
			}
		})
	}
}

// Exec mode strips what unset_env and the server's never-passed variables
// name, as image mode does: from the config's and the session's layers,
// and, through env -u, from what the exec would inherit from the container
// and the daemon. The token that Kill finds the processes by always stays.
func TestExecUnsetEnv(t *testing.T) {
	tests := []struct {
		name     string
		inherit  []string // the container's environment
		paths    []string // what exists in the container
		unset    []string
		wantCmd  []string
		wantGone []string // names absent from the exec's own environment
	}{
		{"the container defines it, and has env",
			[]string{"PATH=/bin", "CLAUDECODE=1", "KEEP=1"}, []string{"/usr/bin/env"}, []string{"CLAUDECODE"},
			[]string{"/usr/bin/env", "-u", "CLAUDECODE", "--", "/bin/sh", "-c", "true"}, []string{"CLAUDECODE"}},
		{"the container defines it, env in /bin",
			[]string{"CLAUDECODE=1"}, []string{"/bin/env"}, []string{"CLAUDECODE", "OTHER"},
			[]string{"/bin/env", "-u", "CLAUDECODE", "--", "/bin/sh", "-c", "true"}, []string{"CLAUDECODE", "OTHER"}},
		{"the container defines it, without env: it stays",
			[]string{"CLAUDECODE=1"}, nil, []string{"CLAUDECODE"},
			[]string{"/bin/sh", "-c", "true"}, []string{"CLAUDECODE"}},
		{"only the config sets it",
			[]string{"PATH=/bin"}, []string{"/usr/bin/env"}, []string{"CLAUDECODE"},
			[]string{"/bin/sh", "-c", "true"}, []string{"CLAUDECODE"}},
		{"TERM, which the daemon sets too",
			nil, []string{"/usr/bin/env"}, []string{"TERM"},
			[]string{"/usr/bin/env", "-u", "TERM", "--", "/bin/sh", "-c", "true"}, []string{"TERM"}},
		{"the token stays",
			[]string{execTokenVar + "=image"}, []string{"/usr/bin/env"}, []string{execTokenVar, "CLAUDECODE"},
			[]string{"/bin/sh", "-c", "true"}, []string{"CLAUDECODE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := startFakeDaemon(t)
			ctx := testContext(t, 30*time.Second)
			cfg := execTargetConfig(t, fd, tt.inherit, tt.paths, map[string]any{
				"env": map[string]string{"CLAUDECODE": "1", "FROM_CONFIG": "yes"},
			})
			req := request("unset", cfg, "/bin/sh", "-c", "true")
			req.Env = map[string]string{"OTHER": "x", "FROM_SESSION": "yes"}
			req.UnsetEnv = tt.unset
			p := spawnExec(t, ctx, req)
			id, token, created := fd.sessionExec(t)
			if !slices.Equal(created.Cmd, tt.wantCmd) {
				t.Errorf("exec command %q, want %q", created.Cmd, tt.wantCmd)
			}
			env := strings.Join(created.Env, " ")
			for _, k := range tt.wantGone {
				if slices.ContainsFunc(created.Env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
					t.Errorf("exec environment %q has %s", env, k)
				}
			}
			for _, kv := range []string{"FROM_CONFIG=yes", "FROM_SESSION=yes", execTokenVar + "=" + token} {
				if !slices.Contains(created.Env, kv) {
					t.Errorf("exec environment %q lacks %s", env, kv)
				}
			}
			if token == "" || token == "image" {
				t.Errorf("exec token %q, want the session's own", token)
			}
			fd.endExec(id, 0)
			p.Close()
		})
	}
}
