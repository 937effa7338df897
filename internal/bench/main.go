// Command bench is `make bench`: it measures ptyhost's throughput, echo
// latency and CPU cost through the whole path (child → PTY → plugin → gRPC →
// core → WebSocket client) against a direct PTY read of the same child
// program; runs the same generator in a DOCKER and an SSH environment of
// the same server, against the services that scripts/bench.sh starts, and
// compares their throughput and echo with the HOST path's; measures what
// idle HOST sessions cost the core and the plugin (idle.go), the replay of
// a full ring and the store writes under output (replay.go); and prints
// every figure with issue 13's target (targets.go). With --soak it runs
// only the soak (soak.go). See docs/performance.md.
//
// It builds the generator (internal/bench/gen, static, so that it runs in
// the test image too) into a temporary directory under /tmp that the SSH
// test user can read, starts `ptyhost serve` from --bin on a free loopback
// port with its own temporary data directory, and removes all of it, and
// stops every process it started, on every way out, including Ctrl-C.
//
// It exits non-zero only when it could not measure (or ptyhost lost output
// without saying so), never because a target was missed. A DOCKER or SSH
// path whose service is not there is skipped, with the reason.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ready is what the generator writes once its terminal is in raw mode; a
// copy of gen.Ready.
const ready = "\x1b[0mptyhost-bench ready\r\n"

const (
	// fanout is the number of clients of the multi-client run.
	fanout = 8
	// scrollback describes the main server's --scrollback: the bench
	// leaves the default (core.DefaultScrollbackBytes), as the issue's
	// throughput targets ask.
	scrollback = "default (256KiB)"
	// warmupKeys are echo keystrokes sent before the timed ones.
	warmupKeys = 50
	// stepTimeout bounds one measurement; a hang is an error, not a wait.
	stepTimeout = 2 * time.Minute
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil && interrupted:
		fmt.Fprintln(os.Stderr, "bench: interrupted; everything it started is stopped and removed")
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(c.bin)
	if err != nil {
		return err
	}
	for _, p := range []string{filepath.Join(bin, "ptyhost"), filepath.Join(bin, "plugins", "ptyhost-plugin-host")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%v (run make build, or point --bin at the built binaries)", err)
		}
	}
	// Under /tmp, not $TMPDIR: the SSH test user runs the generator from
	// here, and the Docker daemon mounts its directory.
	tmp, err := os.MkdirTemp("/tmp", "ptyhost-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	genDir := filepath.Join(tmp, "gen")
	for _, d := range []string{tmp, genDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}

	b := &bench{c: c, log: func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }}
	b.log("building the generator")
	if b.gen, err = buildGen(ctx, genDir); err != nil {
		return err
	}
	b.host = place{env: "host", gen: b.gen, worktree: genDir}
	b.remotes = []*remote{dockerPath(genDir, c.remoteBytes), sshPath(tmp, b.gen, c.remoteBytes)}
	ticks, err := clockTicks()
	if err != nil {
		b.log("%v; assuming 100 clock ticks per second", err)
		ticks = 100
	}
	if c.soak > 0 {
		return b.soak(ctx, bin, tmp, stdout, stderr)
	}
	b.log("starting %s serve (default --scrollback)", filepath.Join(bin, "ptyhost"))
	if b.srv, err = startServer(ctx, bin, mkdir(tmp, "data"), "", stderr); err != nil {
		return err
	}
	defer func() {
		if err := b.srv.stop(); err != nil {
			b.log("stopping the server: %v", err)
		}
	}()
	procs, cpuErr := findProcs(b.srv.pid())
	r := &results{
		Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(),
		Scrollback: scrollback, Runs: c.runs, Keys: c.keys,
		Bytes1: c.bytes, BytesN: c.bytes / 2, Clients: fanout,
		Docker: b.remotes[0].res, SSH: b.remotes[1].res,
	}
	// First, while the server is fresh: the idle sessions.
	switch {
	case c.idle == 0:
		r.IdleSkipped = "--idle-sessions 0"
	case cpuErr != nil:
		r.IdleSkipped = cpuErr.Error()
	default:
		b.log("idle sessions: creating %d HOST sessions of %q, %d at a time", c.idle, idleArgv, scaleConcurrency)
		if r.Idle, err = b.srv.idleSessions(ctx, b.host, c.idle, procs, b.log); err != nil {
			return fmt.Errorf("idle sessions: %w", err)
		}
	}
	for _, rm := range b.remotes {
		rm.setup(ctx, b.srv)
		if rm.res.Failed != "" {
			b.log("%s: %s", rm.name, rm.res.Failed)
		}
	}
	if cpuErr == nil {
		b.load, cpuErr = newLoadMeter(procs, ticks)
	}
	if cpuErr == nil {
		b.cpu = &cpuMeter{procs: procs, ticks: ticks}
		b.procs = &procs
	} else {
		b.log("not measuring CPU: %v", cpuErr)
	}
	for i := range c.runs {
		if err := b.runOnce(ctx, i, r); err != nil {
			return err
		}
	}
	if b.load != nil {
		other, err := b.load.otherCPUs()
		if err != nil {
			return fmt.Errorf("measuring the machine's load: %w", err)
		}
		r.OtherCPUs = &other
	}
	switch {
	case b.cpu == nil:
		r.CPUError = cpuErr.Error()
	case b.cpu.err != nil:
		return fmt.Errorf("reading CPU times: %w", b.cpu.err)
	default:
		r.CPU = b.cpu.total.perMB(c.bytes * int64(c.runs))
	}
	if err := b.ringRuns(ctx, bin, tmp, stderr, r); err != nil {
		return err
	}
	b.clusterPath(ctx, bin, tmp, stderr, r)
	r.summarize()
	for _, rm := range b.remotes {
		rm.summarize(&r.Summary, r.Summary.OneMBps)
	}
	r.Summary.Targets = r.targets()

	table := stdout
	if c.json {
		table = stderr
	}
	r.writeTable(table, b.remotes)
	if c.json {
		if err := r.writeJSON(stdout); err != nil {
			return err
		}
	}
	if bad := r.lostOutput(); bad != "" {
		return errors.New(bad)
	}
	var failed []string
	for _, rm := range b.remotes {
		if rm.res.Failed != "" {
			failed = append(failed, fmt.Sprintf("the %s path: %s", rm.typ, rm.res.Failed))
		}
	}
	if c := r.Cluster; c != nil && c.Failed != "" {
		failed = append(failed, "the cluster path: "+c.Failed)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not measure %s", strings.Join(failed, "; "))
	}
	return nil
}

// bench is what one bench run has set up.
type bench struct {
	c     config
	log   func(format string, a ...any)
	gen   string    // the generator's path
	host  place     // the generator in the host environment
	srv   *server   // ptyhost serve
	cpu   *cpuMeter // nil when CPU is not measured
	procs *procSet  // the server's processes; nil when not found
	// load measures other work during the HOST runs; nil when it cannot.
	load    *loadMeter
	remotes []*remote // the DOCKER and SSH paths
}

// runOnce runs each measurement once, direct and through ptyhost in turn,
// then the DOCKER and SSH paths, so that a change in the machine's load
// affects all alike, and adds the results to r.
func (b *bench) runOnce(ctx context.Context, i int, r *results) error {
	one, many, runs := b.c.bytes, b.c.bytes/2, b.c.runs
	b.log("run %d/%d: direct flood of %d bytes", i+1, runs, one)
	d, err := directFlood(ctx, b.gen, one)
	if err != nil {
		return fmt.Errorf("direct flood: %w", err)
	}
	r.Direct = append(r.Direct, d)

	b.log("run %d/%d: ptyhost flood of %d bytes, 1 client", i+1, runs, one)
	f, err := b.srv.flood(ctx, b.host, one, 1, b.cpu)
	if err != nil {
		return fmt.Errorf("ptyhost flood, 1 client: %w", err)
	}
	r.One = append(r.One, f)

	b.log("run %d/%d: ptyhost flood of %d bytes, %d clients", i+1, runs, many, fanout)
	f, err = b.srv.flood(ctx, b.host, many, fanout, nil)
	if err != nil {
		return fmt.Errorf("ptyhost flood, %d clients: %w", fanout, err)
	}
	r.Many = append(r.Many, f)

	b.log("run %d/%d: echo, %d keystrokes, direct and through ptyhost", i+1, runs, b.c.keys)
	e, err := directEcho(ctx, b.gen, b.c.keys)
	if err != nil {
		return fmt.Errorf("direct echo: %w", err)
	}
	r.EchoDirect = append(r.EchoDirect, e)
	e, err = b.srv.echo(ctx, b.host, b.c.keys, b.procs, 0)
	if err != nil {
		return fmt.Errorf("ptyhost echo: %w", err)
	}
	r.EchoPtyhost = append(r.EchoPtyhost, e)
	b.log("run %d/%d: echo, %d keystrokes, through ptyhost with %d clients attached", i+1, runs, b.c.keys, fanout)
	e, err = b.srv.echo(ctx, b.host, b.c.keys, nil, fanout-1)
	if err != nil {
		return fmt.Errorf("ptyhost echo, %d clients: %w", fanout, err)
	}
	r.EchoMany = append(r.EchoMany, e)

	b.load.pause()
	defer b.load.resume()
	for _, rm := range b.remotes {
		if err := b.runRemote(ctx, i, rm); err != nil {
			return err
		}
	}
	return nil
}

// ringRuns starts a second server with --scrollback replayRing and runs
// the replay and the store-write measurements on it.
func (b *bench) ringRuns(ctx context.Context, bin, tmp string, stderr io.Writer, r *results) error {
	b.log("starting a second server, --scrollback %s, for the replay and the store writes", replayRing)
	srv, err := startServer(ctx, bin, mkdir(tmp, "data-ring"), replayRing, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			b.log("stopping the second server: %v", err)
		}
	}()
	b.log("replay: %d joins of a session with a full %s ring", replayJoins, replayRing)
	if r.Replay, err = srv.replay(ctx, b.host); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	b.log("store writes: %d sessions writing a line every %dms, counted over %v", storeSessions, storeTickMs, storeWindow)
	if r.Store, err = srv.storeWrites(ctx, b.host); err != nil {
		return fmt.Errorf("store writes: %w", err)
	}
	return nil
}

// mkdir makes dir/name, private to the user, and returns its path; the
// temporary directory is removed with everything in it at the end, and an
// error here shows when the server cannot use it.
func mkdir(dir, name string) string {
	p := filepath.Join(dir, name)
	_ = os.Mkdir(p, 0o700)
	return p
}

// buildGen builds internal/bench/gen into dir and returns its path. It is
// linked statically (CGO_ENABLED=0), so that the same binary runs on the
// host, over SSH and in the busybox test image.
func buildGen(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the bench from inside the ptyhost module (make bench)")
	}
	gen := filepath.Join(dir, "gen")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", gen, "github.com/ptyhost/ptyhost/internal/bench/gen")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the generator: %w\n%s", err, b)
	}
	return gen, os.Chmod(gen, 0o755) // whatever the umask: the SSH user runs it
}
