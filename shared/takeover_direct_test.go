//go:build linux

package shared

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A host that takes a session over while input the host before it wrote
// is still to be applied gets no terminal to write its own to (direct
// input): its input goes as frames, which wait for the old input, where
// a keystroke written to the terminal could land in the middle of the old
// paste. Once nothing is left to apply, an attach gets the terminal again.
func TestTakeoverWithholdsDirectInput(t *testing.T) {
	ctx := testContext(t)
	srv := NewGRPCServer(&fakeEnv{spawn: func(_ context.Context, req SpawnRequest) (PTY, error) {
		return StartCommand(exec.Command(req.Command[0], req.Command[1:]...), req.Size)
	}}, nil)
	c := glueServer(t, srv)
	hold(ctx, t, c)
	// The program reads once the file named go exists.
	start := filepath.Join(t.TempDir(), "go")
	p0, err := c.Spawn(ctx, SpawnRequest{SessionID: "d1", EnvironmentType: "FAKE", Size: Size{Cols: 80, Rows: 24},
		Command: []string{"/bin/sh", "-c", `stty raw -echo; echo READY; while [ ! -e "$0" ]; do sleep 0.05; done; exec cat >/dev/null`, start}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p0.Close() })
	readUntil(t, p0, "READY")
	if directFD(p0.(*grpcPTY)) < 0 {
		t.Fatal("the spawning host got no direct input")
	}
	// More than the terminal holds: the rest goes as frames, which wait
	// at the plugin.
	if _, err := p0.Write([]byte(strings.Repeat("a", 200000))); err != nil {
		t.Fatal(err)
	}
	sess, err := srv.lookup("d1")
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		sess.out.mu.Lock()
		defer sess.out.mu.Unlock()
		return len(sess.out.pending)
	}

	p1, _, err := c.Attach(ctx, "d1", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p1.Close() })
	if pending() == 0 {
		t.Fatal("the old host's input was all applied before the takeover")
	}
	if directFD(p1.(*grpcPTY)) >= 0 {
		t.Error("the host that took the session over writes to its terminal while the old input waits")
	}

	if err := os.WriteFile(start, nil, 0o600); err != nil { // the program reads
		t.Fatal(err)
	}
	p1.(Detacher).Detach()
	eventually(t, "the old input applied and the new host detached", func() bool {
		return pending() == 0 && !kept(ctx, t, c, "d1").Attached
	})
	p2, _, err := c.Attach(ctx, "d1", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p2.Close() })
	if directFD(p2.(*grpcPTY)) < 0 {
		t.Error("an attach with no input left to apply got no direct input")
	}
}
