//go:build unix

package sharedtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// leaderOnlyEnv is a deliberately broken environment: its sessions run
// with shared.StartCommand, but Kill sends SIGKILL to the leader's pid
// alone, not to its process group — the bug the kill_group case exists to
// catch. Close still ends the group, so nothing outlives the test.
type leaderOnlyEnv struct{}

func (leaderOnlyEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "leader-only", Version: "0.0.1", Types: []string{"LEADER_ONLY"}}, nil
}

func (leaderOnlyEnv) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	p, cmd, err := startSession(req, shared.ChildEnvWithout(os.Environ(), req.UnsetEnv, req.Env))
	if err != nil {
		return nil, err
	}
	return leaderOnlyPTY{PTY: p, pid: cmd.Process.Pid}, nil
}

// leaderOnlyPTY is a StartCommand session whose Kill reaches the leader only.
type leaderOnlyPTY struct {
	shared.PTY
	pid int
}

func (p leaderOnlyPTY) Kill(context.Context) error { return unix.Kill(p.pid, unix.SIGKILL) }

// brokenKillEnv, set to 1, makes TestKillGroupCatchesLeaderOnlyKill run
// the harness against leaderOnlyEnv (in a child test process) instead of
// starting that child.
const brokenKillEnv = "PTYHOST_SHAREDTEST_BROKEN_KILL"

// A plugin whose Kill ends only the session's leader fails the harness's
// kill_group case, and only that case: the harness runs against
// leaderOnlyEnv in a child test process, whose failure is the expected
// outcome. (StartCommand, which kills the group, passes the same case in
// shared's TestStartCommandConformance and TestLaunchHostPlugin.)
func TestKillGroupCatchesLeaderOnlyKill(t *testing.T) {
	if os.Getenv(brokenKillEnv) == "1" {
		// The short timeout bounds how long kill_group waits for the
		// child that this environment leaves running.
		sharedtest.Run(t, sharedtest.Serve(t, leaderOnlyEnv{}), sharedtest.Config{Timeout: 10 * time.Second})
		return
	}
	// Every case runs on the byte channel and on the stream: kill_group
	// fails on both, and nothing else (the groups fail with it).
	harnessFailsOnly(t, "TestKillGroupCatchesLeaderOnlyKill", brokenKillEnv, "kill_group", "still runs after Kill")
}
