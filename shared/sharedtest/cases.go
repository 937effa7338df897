package sharedtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// largeOutput is the size of the large_output case.
const largeOutput = 1 << 20

// cases is the conformance table, run in this order (in parallel).
var cases = []testCase{
	{"info", testInfo},
	{"echo", testEcho},
	{"input", testInput},
	{"large_input", testLargeInput},
	{"initial_size", testInitialSize},
	{"resize", testResize},
	{"exit_code", testExitCode},
	{"signal_exit", testSignalExit},
	{"large_output", testLargeOutput},
	{"utf8", testUTF8},
	{"unset_env", testUnsetEnv},
	{"kill", testKill},
	{"kill_group", testKillGroup},
	{"close", testClose},
	{"close_input_stuck", testCloseInputStuck},
	{"duplicate_id", testDuplicateID},
	{"missing_dir", testMissingDir},
	{"bad_config", testBadConfig},
	{"validate_config", testValidateConfig},
	{"health", testHealth},
}

func testInfo(_ context.Context, t *testing.T, h *harness) {
	if h.info.Name == "" || h.info.Version == "" {
		t.Errorf("Info name %q, version %q: want both set", h.info.Name, h.info.Version)
	}
	if !slices.Contains(h.info.Types, h.cfg.Type) {
		t.Errorf("Info types %q do not include %q", h.info.Types, h.cfg.Type)
	}
	for _, c := range h.info.Capabilities {
		if c == "" {
			t.Errorf("Info capabilities %q contain an empty name", h.info.Capabilities)
		}
	}
}

func testEcho(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ptyhost-%s-%s\n' echo "$PTYHOST_SHAREDTEST"`)
	term.Expect(ctx, "ptyhost-echo-1")
	if st := term.Wait(ctx); st.Code != 0 || st.Signal != "" {
		t.Errorf("exit status %+v, want code 0", st)
	}
}

func testInput(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ready\n'; read line; printf 'got:%s\n' "$line"`)
	term.Expect(ctx, "ready")
	term.Write("hello\r")
	term.Expect(ctx, "got:hello")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v, want code 0", st)
	}
}

// largeInput is the size of the large_input case: more than two frames.
const largeInput = 150000

func testLargeInput(ctx context.Context, t *testing.T, h *harness) {
	// Raw mode: no line discipline limits or echo; the count comes back
	// once every byte arrived.
	term := h.run(ctx, t, fmt.Sprintf(`stty raw -echo; printf 'ready\n'; head -c %d | wc -c`, largeInput))
	term.Expect(ctx, "ready")
	if _, err := term.PTY.Write(bytes.Repeat([]byte("x"), largeInput)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Not \b: an escape sequence may end in a letter right before it.
	term.Match(ctx, regexp.MustCompile(fmt.Sprintf(`(^|[^0-9])%d([^0-9]|$)`, largeInput)))
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v, want code 0", st)
	}
}

func testInitialSize(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `stty size`)
	req.Size = shared.Size{Cols: 101, Rows: 37}
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "37 101")
}

func testResize(ctx context.Context, t *testing.T, h *harness) {
	if !h.has(shared.CapResize) {
		t.Skip("no resize capability")
	}
	term := h.run(ctx, t, `printf 'ready\n'; read x; stty size`)
	term.Expect(ctx, "ready")
	if err := term.PTY.Resize(ctx, shared.Size{Cols: 132, Rows: 50}); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	// Input is applied after the resize sent before it.
	term.Write("\r")
	term.Expect(ctx, "50 132")
}

func testExitCode(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `exit 7`)
	if st := term.Wait(ctx); st.Code != 7 || st.Signal != "" {
		t.Errorf("exit status %+v, want code 7", st)
	}
}

func testSignalExit(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `kill -TERM $$`)
	if st := term.Wait(ctx); st.Code != 128+15 || st.Signal != "SIGTERM" {
		t.Errorf("exit status %+v, want code 143 and SIGTERM", st)
	}
}

func testLargeOutput(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `head -c 1048576 /dev/zero | tr '\0' a; exit 3`)
	out := term.ReadAll(ctx)
	if len(out) != largeOutput || bytes.Count(out, []byte("a")) != largeOutput {
		t.Errorf("got %d bytes (%d of them 'a') before EOF, want %d 'a'", len(out), bytes.Count(out, []byte("a")), largeOutput)
	}
	if st, err := term.PTY.Wait(ctx); err != nil || st.Code != 3 {
		t.Errorf("Wait = %+v, %v; want code 3", st, err)
	}
}

func testUTF8(ctx context.Context, t *testing.T, h *harness) {
	// 🙂 is F0 9F 99 82: four bytes, which a reader splitting on byte
	// boundaries or decoding as text could damage.
	term := h.run(ctx, t, `printf '\360\237\231\202 \303\251t\303\251\n'`)
	term.Expect(ctx, "🙂 été")
	term.Wait(ctx)
}

// unsetEnvLayer is the variable the unset_env case sets in the request's
// Env and names in its UnsetEnv.
const unsetEnvLayer = "PTYHOST_SHAREDTEST_UNSET"

// testUnsetEnv checks that the variables SpawnRequest.UnsetEnv names are
// not in the session's environment, however they would get there: one the
// request's Env sets, and those of Config.UnsetEnv (inherited, set by the
// environment's config). Each of those must be in a session spawned
// without UnsetEnv, or the case would prove nothing. A variable it does
// not name stays (PTYHOST_SHAREDTEST, of the request's Env).
func testUnsetEnv(ctx context.Context, t *testing.T, h *harness) {
	names := append([]string{unsetEnvLayer}, h.cfg.UnsetEnv...)
	for _, k := range names {
		if !shared.PortableEnvName(k) {
			t.Fatalf("Config.UnsetEnv: %q is not a name a shell can read: use letters, digits and '_'", k)
		}
	}
	script := unsetEnvScript(append(slices.Clone(names), "PTYHOST_SHAREDTEST"))
	req := h.request(t, script)
	req.Env[unsetEnvLayer] = "layer"
	out := h.spawn(ctx, t, req).ReadAll(ctx)
	for _, k := range names {
		if !bytes.Contains(out, []byte("unset_env:"+k+"=set.")) {
			t.Errorf("a session spawned without UnsetEnv does not have %s, so removing it proves nothing (Config.UnsetEnv names variables sessions have); output: %q", k, tail(out))
		}
	}

	req = h.request(t, script)
	req.Env[unsetEnvLayer] = "layer"
	req.UnsetEnv = names
	out = h.spawn(ctx, t, req).ReadAll(ctx)
	for _, k := range names {
		if !bytes.Contains(out, []byte("unset_env:"+k+"=unset.")) {
			t.Errorf("the session has %s, which its SpawnRequest.UnsetEnv names; output: %q", k, tail(out))
		}
	}
	if !bytes.Contains(out, []byte("unset_env:PTYHOST_SHAREDTEST=set.")) {
		t.Errorf("the session lacks PTYHOST_SHAREDTEST, set by the request's Env and not named by its UnsetEnv; output: %q", tail(out))
	}
}

// unsetEnvScript returns a script that prints, for each of names, a line
// "unset_env:NAME=set." when the session has the variable and
// "unset_env:NAME=unset." when it does not.
func unsetEnvScript(names []string) string {
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "s=${%s+set}; printf 'unset_env:%%s=%%s.\\n' %s \"${s:-unset}\"\n", k, k)
	}
	return b.String()
}

// maxKillCall bounds how long the kill case lets a Kill call take. Kill
// returns at once and escalates (SIGKILL after a grace) in the
// background; a Kill that waits out its grace, seconds, fails. The bound
// is generous, for a call over gRPC under -race on a loaded machine.
const maxKillCall = 2 * time.Second

// testKill checks that Kill ends the session, returns at once (within
// maxKillCall), and that a Kill once the child has exited does nothing
// but return nil.
func testKill(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ready\n'; sleep 1000`)
	term.Expect(ctx, "ready")
	start := time.Now()
	if err := term.PTY.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if took := time.Since(start); took > maxKillCall {
		t.Errorf("Kill took %v, more than %v: return at once and escalate (SIGKILL after the grace) in the background", took.Round(time.Millisecond), maxKillCall)
	}
	if st := term.Wait(ctx); st.Code == 0 {
		t.Errorf("exit status %+v after Kill, want non-zero", st)
	}
	// The child has exited (Wait said so): a Kill now does nothing.
	if err := term.PTY.Kill(ctx); err != nil {
		t.Errorf("Kill after the child exited: %v, want nil (it does nothing)", err)
	}
}

// killGroupChild is the kill_group case's session: a background child
// that ignores SIGHUP (as nohup would) reports its own pid once the trap
// is set, and the session's leader waits for it.
const killGroupChild = `sh -c 'trap "" HUP; printf "child=%s.\n" $$; exec sleep 1000' & wait`

// killGroupCheck is the kill_group case's watcher, run in a second session
// of the environment: it says whether it can see the child (pid %s), waits
// for a line of input, then prints "gone" once the child no longer runs. A
// zombie counts as gone: killed, but whoever adopted it has not reaped it
// yet. Where /proc tells, the pid must also be the child's (its command
// line holds sleep and 1000, which the watcher's own does not): in another
// pid namespace (a container per session) the same number is another
// process.
const killGroupCheck = `pid=%s
alive() {
	kill -0 "$pid" 2>/dev/null || return 1
	st=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
	case $st in *") Z "*) return 1 ;; esac
	cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 0
	case $cmd in *sle[e]p*100[0]*) return 0 ;; esac
	return 1
}
if alive; then printf 'watch:%%s.\n' seen; else printf 'watch:%%s.\n' blind; fi
read x
while alive; do sleep 0.1 2>/dev/null || sleep 1; done
printf 'watch:%%s.\n' gone`

var (
	killGroupChildRe = regexp.MustCompile(`child=([0-9]+)\.`)
	killGroupWatchRe = regexp.MustCompile(`watch:(seen|blind)\.`)
)

// testKillGroup checks that Kill ends everything the session started, not
// only its leader: a background child that ignores SIGHUP must be gone
// once the session has ended, before the case's deadline (Config.Timeout).
// An adapter that signals only the leader's pid, or only hangs up, fails.
// The child is watched from a second session of the same environment; an
// environment whose sessions cannot see each other's processes (a
// container per session) skips the case, which then proves nothing.
func testKillGroup(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, killGroupChild)
	pid := term.Match(ctx, killGroupChildRe)[1]
	watch := h.run(ctx, t, fmt.Sprintf(killGroupCheck, pid))
	if watch.Match(ctx, killGroupWatchRe)[1] == "blind" {
		t.Skipf("a second session cannot see the first one's process %s: sessions do not share a process namespace", pid)
	}
	if err := term.PTY.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if st := term.Wait(ctx); st.Code == 0 {
		t.Errorf("exit status %+v after Kill, want non-zero", st)
	}
	watch.Write("\r")
	out, _, ok := watch.waitFor(ctx, func(out []byte, readErr error) bool {
		return bytes.Contains(out, []byte("watch:gone.")) || readErr != nil
	})
	if !bytes.Contains(out, []byte("watch:gone.")) {
		if ok {
			t.Fatalf("the watching session ended before the child was gone; output: %q", tail(out))
		}
		t.Fatalf("background child %s (ignoring SIGHUP) still runs after Kill and the session's end: Kill must end the whole process group", pid)
	}
}

func testClose(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `printf 'ready\n'; sleep 1000`)
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "ready")
	closeWithin(ctx, t, term, "before the deadline")
	term.Ended(ctx) // Close unblocks Read

	// The session id is free again.
	again := h.spawn(ctx, t, req)
	if err := again.Close(); err != nil {
		t.Errorf("Close of the respawned session: %v", err)
	}
}

// closeStuckWait bounds the close_input_stuck case's Close: well under
// the 30 s a host waits for a plugin's Close.
const closeStuckWait = 10 * time.Second

// testCloseInputStuck checks that a session whose program never reads
// input, with more input pending than the terminal holds, still closes
// promptly: the kill must end a write stuck on the terminal.
func testCloseInputStuck(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `stty raw -echo; printf 'ready\n'; exec sleep 1000`)
	term.Expect(ctx, "ready")
	wrote := make(chan error, 1)
	go func() {
		_, err := term.PTY.Write(bytes.Repeat([]byte("x"), 4<<20))
		wrote <- err
	}()
	// Let the input fill the terminal, and whatever lies between.
	select {
	case err := <-wrote:
		// A plugin may hold that much input itself: then nothing is
		// stuck, and this case checks nothing.
		t.Skipf("Write of 4 MiB to a program that reads nothing returned (%v) within 500ms: no input is stuck to test Close with", err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	closeCtx, cancel := context.WithTimeout(ctx, closeStuckWait)
	defer cancel()
	closeWithin(closeCtx, t, term, fmt.Sprintf("within %v with input stuck", closeStuckWait))
	t.Logf("Close took %v", time.Since(start).Round(time.Millisecond))
	select {
	case <-wrote:
	case <-time.After(closeStuckWait):
		t.Error("Write did not return after Close")
	}
}

// closeWithin closes term and fails the case unless Close returns before
// ctx ends; within says what the bound was.
func closeWithin(ctx context.Context, t *testing.T, term *Term, within string) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- term.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("Close did not return %s", within)
	}
}

func testDuplicateID(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `printf 'ready\n'; sleep 1000`)
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "ready")
	p, err := h.env.Spawn(ctx, req)
	if err == nil {
		_ = p.Close()
	}
	if !errors.Is(err, shared.ErrAlreadyExists) {
		t.Errorf("second Spawn of id %q: %v, want ErrAlreadyExists", req.SessionID, err)
	}
	if err := term.PTY.Kill(ctx); err != nil {
		t.Errorf("Kill: %v", err)
	}
	term.Wait(ctx)
}

func testMissingDir(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `true`)
	req.Dir = h.cfg.MissingDir
	expectSpawnError(ctx, t, h, req, shared.ErrInvalidArgument)
}

func testBadConfig(ctx context.Context, t *testing.T, h *harness) {
	if h.cfg.BadConfig == nil {
		t.Skip("no Config.BadConfig")
	}
	req := h.request(t, `true`)
	req.Config = h.cfg.BadConfig
	expectSpawnError(ctx, t, h, req, shared.ErrInvalidConfig)
}

func expectSpawnError(ctx context.Context, t *testing.T, h *harness, req shared.SpawnRequest, want error) {
	t.Helper()
	p, err := h.env.Spawn(ctx, req)
	if err == nil {
		_ = p.Close()
		t.Fatalf("Spawn succeeded, want an error wrapping %q", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("Spawn: %q, want an error wrapping %q", err, want)
	}
}

func testValidateConfig(ctx context.Context, t *testing.T, h *harness) {
	v, ok := h.env.(shared.ConfigValidator)
	if !ok {
		t.Skip("environment does not implement shared.ConfigValidator")
	}
	err := v.ValidateConfig(ctx, h.cfg.Type, h.cfg.Config)
	if !h.has(shared.CapValidateConfig) {
		if !errors.Is(err, shared.ErrUnsupported) {
			t.Errorf("ValidateConfig without the capability: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Errorf("ValidateConfig(Config): %v", err)
	}
	if h.cfg.BadConfig != nil {
		if err := v.ValidateConfig(ctx, h.cfg.Type, h.cfg.BadConfig); !errors.Is(err, shared.ErrInvalidConfig) {
			t.Errorf("ValidateConfig(BadConfig): %v, want ErrInvalidConfig", err)
		}
	}
}

func testHealth(ctx context.Context, t *testing.T, h *harness) {
	c, ok := h.env.(shared.HealthChecker)
	if !ok {
		t.Skip("environment does not implement shared.HealthChecker")
	}
	err := c.Health(ctx, h.cfg.Type, h.cfg.Config)
	if !h.has(shared.CapHealth) {
		if !errors.Is(err, shared.ErrUnsupported) {
			t.Errorf("Health without the capability: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Errorf("Health(Config): %v", err)
	}
}
