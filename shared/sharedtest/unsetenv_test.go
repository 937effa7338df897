//go:build unix

package sharedtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// keepsUnsetEnv is a deliberately broken environment: its sessions run
// with shared.StartCommand in an environment built by shared.ChildEnv,
// which knows nothing of SpawnRequest.UnsetEnv — the bug the unset_env
// case exists to catch.
type keepsUnsetEnv struct{}

func (keepsUnsetEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "keeps-unset", Version: "0.0.1", Types: []string{"KEEPS_UNSET"}}, nil
}

func (keepsUnsetEnv) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	p, _, err := startSession(req, shared.ChildEnv(os.Environ(), nil, req.Env))
	return p, err
}

// brokenUnsetEnv, set to 1, makes TestUnsetEnvCatchesKeptVariables run
// the harness against keepsUnsetEnv (in a child test process) instead of
// starting that child.
const brokenUnsetEnv = "PTYHOST_SHAREDTEST_BROKEN_UNSET"

// The unset_env case fails an environment that keeps the variables
// SpawnRequest.UnsetEnv names, and only that case: the harness runs
// against keepsUnsetEnv in a child test process, whose failure is the
// expected outcome. (StartCommand with ChildEnvWithout passes the same
// case in TestKillGroupCatchesLeaderOnlyKill.)
func TestUnsetEnvCatchesKeptVariables(t *testing.T) {
	if os.Getenv(brokenUnsetEnv) == "1" {
		sharedtest.Run(t, sharedtest.Serve(t, keepsUnsetEnv{}), sharedtest.Config{})
		return
	}
	harnessFailsOnly(t, "TestUnsetEnvCatchesKeptVariables", brokenUnsetEnv, "unset_env", "the session has PTYHOST_SHAREDTEST_UNSET, which its SpawnRequest.UnsetEnv names")
}

// missingUnsetEnv, set to 1, makes TestUnsetEnvNeedsTheVariable run the
// harness with a Config.UnsetEnv that names a variable sessions never
// have (in a child test process) instead of starting that child.
const missingUnsetEnv = "PTYHOST_SHAREDTEST_MISSING_UNSET"

// A variable of Config.UnsetEnv that sessions do not have even without
// SpawnRequest.UnsetEnv fails the case, which would prove nothing.
func TestUnsetEnvNeedsTheVariable(t *testing.T) {
	if os.Getenv(missingUnsetEnv) == "1" {
		sharedtest.Run(t, sharedtest.Serve(t, keepsUnsetEnv{}), sharedtest.Config{
			UnsetEnv: []string{"PTYHOST_SHAREDTEST_NEVER_SET"},
		})
		return
	}
	harnessFailsOnly(t, "TestUnsetEnvNeedsTheVariable", missingUnsetEnv, "unset_env", "does not have PTYHOST_SHAREDTEST_NEVER_SET, so removing it proves nothing")
}
