//go:build unix

package sharedtest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// killRulesEnv is a deliberately broken environment whose sessions run
// with shared.StartCommand and whose PTY's Kill is kill's: one that breaks
// a rule of Kill the kill case checks.
type killRulesEnv struct {
	kill func(ctx context.Context, p shared.PTY, pid int) error
}

func (killRulesEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "kill-rules", Version: "0.0.1", Types: []string{"KILL_RULES"}}, nil
}

func (e killRulesEnv) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	p, cmd, err := startSession(req, shared.ChildEnvWithout(os.Environ(), req.UnsetEnv, req.Env))
	if err != nil {
		return nil, err
	}
	return killRulesPTY{PTY: p, pid: cmd.Process.Pid, kill: e.kill}, nil
}

type killRulesPTY struct {
	shared.PTY
	pid  int
	kill func(ctx context.Context, p shared.PTY, pid int) error
}

func (p killRulesPTY) Kill(ctx context.Context) error { return p.kill(ctx, p.PTY, p.pid) }

// slowKill hangs a running session's group up, waits out a grace of 2.5 s
// (more than the case allows a Kill, less than the rest of the harness
// bears) and then kills it: the escalation a Kill must leave to the
// background.
func slowKill(ctx context.Context, p shared.PTY, pid int) error {
	if exited(ctx, p) {
		return nil
	}
	_ = unix.Kill(-pid, unix.SIGHUP)
	select {
	case <-time.After(2500 * time.Millisecond):
	case <-ctx.Done():
	}
	return p.Kill(ctx)
}

// exited reports whether p's child has exited. (Not with a done context:
// Wait would choose at random between it and an exit.)
func exited(ctx context.Context, p shared.PTY) bool {
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := p.Wait(ctx)
	return err == nil
}

// exitedKillFails kills as StartCommand does while the child runs, and
// fails once it has exited, where a Kill must do nothing.
func exitedKillFails(ctx context.Context, p shared.PTY, _ int) error {
	if exited(ctx, p) {
		return errors.New("the session's process has already exited")
	}
	return p.Kill(ctx)
}

// brokenKillRulesEnv, set to 1, makes TestKillCatchesSlowKill and
// TestKillCatchesKillAfterExitError run
// the harness against their killRulesEnv (in a child test process).
const brokenKillRulesEnv = "PTYHOST_SHAREDTEST_BROKEN_KILL_RULES"

// runKillRules runs the harness against kill in the child test process,
// or checks in the parent that the child fails in
// the kill case alone, because.
func runKillRules(t *testing.T, test string, kill func(context.Context, shared.PTY, int) error, because string) {
	if os.Getenv(brokenKillRulesEnv) == "1" {
		sharedtest.Run(t, sharedtest.Serve(t, killRulesEnv{kill: kill}), sharedtest.Config{Timeout: 20 * time.Second})
		return
	}
	harnessFailsOnly(t, test, brokenKillRulesEnv, "kill", because)
}

// A plugin whose Kill waits out the grace before SIGKILL, instead of
// returning at once and escalating in the background, fails the kill case.
func TestKillCatchesSlowKill(t *testing.T) {
	runKillRules(t, "TestKillCatchesSlowKill", slowKill, "escalate (SIGKILL after the grace) in the background")
}

// A plugin whose Kill fails once the child has exited, where it must do
// nothing, fails the kill case.
func TestKillCatchesKillAfterExitError(t *testing.T) {
	runKillRules(t, "TestKillCatchesKillAfterExitError", exitedKillFails, "Kill after the child exited: the session's process has already exited")
}
