//go:build unix

package sharedtest_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// harnessFailsOnly runs the test named test again in a child test
// process with the variable broken set to 1, where it runs the harness
// against a deliberately broken environment, and fails t unless the child
// failed, within t's deadline, in the case kase alone — on the byte
// channel and on the stream, with the groups that hold it — and its
// output says because.
func harnessFailsOnly(t *testing.T, test, broken, kase, because string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), broken+"=1")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err == nil {
		t.Fatalf("the harness passed a broken environment; output:\n%s", out)
	}
	if ctx.Err() != nil {
		t.Fatalf("the child test process did not finish: %v; output:\n%s", err, out)
	}
	var failed []string
	for _, m := range regexp.MustCompile(`--- FAIL: `+test+`/(\S+)`).FindAllStringSubmatch(out, -1) {
		failed = append(failed, m[1])
	}
	slices.Sort(failed)
	if want := []string{"byte_channel", "byte_channel/" + kase, "stream", "stream/" + kase}; !slices.Equal(failed, want) {
		t.Fatalf("failed cases %q, want %q; output:\n%s", failed, want, out)
	}
	if !strings.Contains(out, because) {
		t.Errorf("%s failed for another reason than %q; output:\n%s", kase, because, out)
	}
}

// startSession starts req's command as shared.StartCommand does for a
// plugin, with env as its environment: the common part of the
// deliberately broken environments.
func startSession(req shared.SpawnRequest, env []string) (shared.PTY, *exec.Cmd, error) {
	dir, err := shared.WorkingDir(req.Dir)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(req.Command[0], req.Command[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	p, err := shared.StartCommand(cmd, req.Size)
	return p, cmd, err
}
