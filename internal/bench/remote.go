package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The DOCKER and SSH paths: the same generator, run through the same
// server as the HOST runs, in an environment of each type against the
// services scripts/bench.sh starts (scripts/services/{docker,sshd}.sh).
// Each is skipped, with the reason, when its service is not there.

const (
	// creates is the number of timed session creates per run.
	creates = 10
	// genMount is where the DOCKER sessions see the generator's directory.
	genMount = "/bench"
)

// createArgv is what the sessions of the create measurement run: a
// process that lives until the session is destroyed, and dies of the
// SIGHUP that destroying it sends.
var createArgv = []string{"sleep", "600"}

// remote is the DOCKER or the SSH path of one bench run.
type remote struct {
	name string // docker or ssh, as the report names it
	typ  string // the environment type
	at   place
	// config is the environment's config.
	config map[string]any
	// echo says whether the path's echo is measured.
	echo bool
	// hold says whether the create measurement keeps a session open while
	// it times the others, so that they reuse its connection (SSH).
	hold bool
	// openssh says whether OpenSSH's client runs the same flood as a
	// baseline of the path's own (SSH; opensshFlood).
	openssh bool
	res     *remoteResults
}

// remoteResults is what the bench measured on one path, or why not.
type remoteResults struct {
	// Skipped says why the path was not measured: its service is not
	// there. Failed says why a measurement failed after it was set up.
	Skipped string         `json:"skipped,omitempty"`
	Failed  string         `json:"failed,omitempty"`
	Bytes   int64          `json:"bytes"`
	Flood   []floodResult  `json:"flood_runs,omitempty"`
	Echo    []echoResult   `json:"echo_runs,omitempty"`
	Create  []createResult `json:"create_runs,omitempty"`
	// OpenSSH is the floods of OpenSSH's client (the SSH path), or why
	// they failed; a failure there does not stop the path's measurements.
	OpenSSH       []floodResult `json:"openssh_client_runs,omitempty"`
	OpenSSHFailed string        `json:"openssh_client_failed,omitempty"`

	Summary remoteSummary `json:"summary"`
}

// remoteSummary is the medians over the runs.
type remoteSummary struct {
	MBps float64 `json:"one_client_mb_per_s"`
	// Ratio is MBps ÷ the HOST path's 1-client figure of the same bench.
	Ratio float64 `json:"host_ratio"`
	// OpenSSHMBps is the median of OpenSSH's client's floods (0 when not
	// measured), OpenSSHRatio that ÷ the HOST path's 1-client figure.
	OpenSSHMBps  float64       `json:"openssh_client_mb_per_s,omitempty"`
	OpenSSHRatio float64       `json:"openssh_client_host_ratio,omitempty"`
	Echo         *echoResult   `json:"echo,omitempty"`
	Create       *createResult `json:"create,omitempty"`
}

// createResult is one run's session creates: the time from POST to its
// 201, and from DELETE to its 204 (the session has ended by then).
type createResult struct {
	N         int           `json:"n"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	Max       time.Duration `json:"max_ns"`
	DeleteP50 time.Duration `json:"delete_p50_ns"`
}

// dockerPath sets up the DOCKER path from the environment of docker.sh:
// sessions in a new container of $PTYHOST_TEST_DOCKER_IMAGE (present; never
// pulled) with genDir mounted read-only at /bench. The daemon is the
// server's $DOCKER_HOST.
func dockerPath(genDir string, bytes int64) *remote {
	r := &remote{name: "docker", typ: "DOCKER", echo: true, res: &remoteResults{Bytes: bytes},
		at: place{env: "bench-docker", gen: genMount + "/gen"}}
	image := os.Getenv("PTYHOST_TEST_DOCKER_IMAGE")
	switch {
	case os.Getenv("PTYHOST_BENCH_SKIP_DOCKER") != "":
		r.res.Skipped = os.Getenv("PTYHOST_BENCH_SKIP_DOCKER")
	case image == "":
		r.res.Skipped = "PTYHOST_TEST_DOCKER_IMAGE is not set (make bench sets it: scripts/services/docker.sh start)"
	}
	r.config = map[string]any{
		"image":  image,
		"pull":   "never",
		"mounts": []map[string]any{{"source": genDir, "target": genMount, "read_only": true}},
	}
	return r
}

// sshPath sets up the SSH path from the environment of sshd.sh: sessions
// over loopback as the test user, with the host key checked strictly
// against a known_hosts file written into dir. The generator, at gen,
// must be executable by the test user.
func sshPath(dir, gen string, bytes int64) *remote {
	r := &remote{name: "ssh", typ: "SSH", echo: true, hold: true, openssh: true, res: &remoteResults{Bytes: bytes},
		at: place{env: "bench-ssh", gen: gen}}
	if why := os.Getenv("PTYHOST_BENCH_SKIP_SSH"); why != "" {
		r.res.Skipped = why
		return r
	}
	env := map[string]string{}
	var missing []string
	for _, k := range []string{"HOST", "PORT", "USER", "KEY", "HOST_KEY_PUB"} {
		if env[k] = os.Getenv("PTYHOST_TEST_SSH_" + k); env[k] == "" {
			missing = append(missing, "PTYHOST_TEST_SSH_"+k)
		}
	}
	if len(missing) == len(env) {
		missing = []string{"PTYHOST_TEST_SSH_*"}
	}
	if len(missing) > 0 {
		r.res.Skipped = strings.Join(missing, ", ") + " not set (make bench sets them: scripts/services/sshd.sh start)"
		return r
	}
	port, err := strconv.Atoi(env["PORT"])
	if err != nil {
		r.res.Skipped = fmt.Sprintf("PTYHOST_TEST_SSH_PORT=%q is not a port", env["PORT"])
		return r
	}
	knownHosts, err := writeKnownHosts(dir, env["HOST"], port, env["HOST_KEY_PUB"])
	if err != nil {
		r.res.Skipped = err.Error()
		return r
	}
	r.config = map[string]any{
		"host":           env["HOST"],
		"port":           port,
		"user":           env["USER"],
		"identity_file":  env["KEY"],
		"known_hosts":    knownHosts,
		"host_key_check": "strict",
	}
	return r
}

// writeKnownHosts writes a known_hosts file into dir that lists the
// public key in pubFile (an OpenSSH .pub file) for host:port.
func writeKnownHosts(dir, host string, port int, pubFile string) (string, error) {
	b, err := os.ReadFile(pubFile)
	if err != nil {
		return "", fmt.Errorf("reading the SSH host key: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "", fmt.Errorf("%s is not an OpenSSH public key", pubFile)
	}
	pattern := host
	if port != 22 {
		pattern = fmt.Sprintf("[%s]:%d", host, port)
	}
	path := filepath.Join(dir, "known_hosts")
	return path, os.WriteFile(path, []byte(pattern+" "+f[0]+" "+f[1]+"\n"), 0o644)
}

// setup creates the path's environment in s; a failure marks the path
// failed.
func (r *remote) setup(ctx context.Context, s *server) {
	if !r.active() {
		return
	}
	if err := s.createEnvironment(ctx, r.at.env, r.typ, r.config); err != nil {
		r.res.Failed = fmt.Sprintf("creating the %s environment: %v", r.typ, err)
	}
}

// active reports whether the path is (still) measured.
func (r *remote) active() bool { return r.res.Skipped == "" && r.res.Failed == "" }

// runRemote runs r's measurements once: the 1-client flood, the echo
// (SSH), the creates. A failure marks the path failed and ends its
// measurements; only an interruption is returned.
func (b *bench) runRemote(ctx context.Context, i int, r *remote) error {
	if !r.active() {
		return nil
	}
	err := func() error {
		b.log("run %d/%d: %s flood of %d bytes, 1 client", i+1, b.c.runs, r.name, r.res.Bytes)
		f, err := b.srv.flood(ctx, r.at, r.res.Bytes, 1, nil)
		if err != nil {
			return fmt.Errorf("flood: %w", err)
		}
		r.res.Flood = append(r.res.Flood, f)
		if r.openssh && r.res.OpenSSHFailed == "" {
			b.log("run %d/%d: %s flood of %d bytes, OpenSSH's client", i+1, b.c.runs, r.name, r.res.Bytes)
			f, err := opensshFlood(ctx, r.config, r.at.gen, r.res.Bytes)
			switch {
			case err != nil && ctx.Err() != nil:
				return err
			case err != nil:
				r.res.OpenSSHFailed = err.Error()
				b.log("%s, OpenSSH's client: %v; not measuring it any further", r.name, err)
			default:
				r.res.OpenSSH = append(r.res.OpenSSH, f)
			}
		}
		if r.echo {
			b.log("run %d/%d: %s echo, %d keystrokes", i+1, b.c.runs, r.name, b.c.keys)
			e, err := b.srv.echo(ctx, r.at, b.c.keys, nil, 0)
			if err != nil {
				return fmt.Errorf("echo: %w", err)
			}
			r.res.Echo = append(r.res.Echo, e)
		}
		b.log("run %d/%d: %s, %d session creates", i+1, b.c.runs, r.name, creates)
		c, err := b.srv.createTimes(ctx, r.at, r.hold, creates)
		if err != nil {
			return fmt.Errorf("creates: %w", err)
		}
		r.res.Create = append(r.res.Create, c)
		return nil
	}()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.res.Failed = err.Error()
		b.log("%s: %v; not measuring it any further", r.name, err)
	}
	return nil
}

// createTimes creates n sessions in at, one after another, each running
// createArgv, timing each from POST to its 201; it destroys each (timing
// the DELETE, which returns once the session has ended) before the next.
// An untimed session comes first: with hold it stays open until the end,
// so that every timed create finds its connection open; without, it is
// destroyed at once and only warms the plugin up.
func (s *server) createTimes(ctx context.Context, at place, hold bool, n int) (createResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	warm, err := s.createSession(ctx, at, createArgv)
	if err != nil {
		return createResult{}, err
	}
	if hold {
		defer s.deleteSession(warm)
	} else if err := s.deleteSession(warm); err != nil {
		return createResult{}, err
	}
	var create, del []time.Duration
	for range n {
		t0 := time.Now()
		id, err := s.createSession(ctx, at, createArgv)
		if err != nil {
			return createResult{}, err
		}
		t1 := time.Now()
		err = s.deleteSession(id)
		create, del = append(create, t1.Sub(t0)), append(del, time.Since(t1))
		if err != nil {
			return createResult{}, err
		}
	}
	slices.Sort(create)
	slices.Sort(del)
	return createResult{N: n, P50: percentile(create, 50), P90: percentile(create, 90),
		Max: create[len(create)-1], DeleteP50: percentile(del, 50)}, nil
}

// summarize computes r's medians; host is the HOST path's 1-client MB/s.
func (r *remote) summarize(s *summary, host float64) {
	res := r.res
	if len(res.Flood) > 0 {
		res.Summary.MBps, _, _ = s.medianFlood(r.name+", 1 client", res.Flood)
		if host > 0 {
			res.Summary.Ratio = res.Summary.MBps / host
		}
	}
	if len(res.OpenSSH) > 0 {
		res.Summary.OpenSSHMBps, _, _ = s.medianFlood(r.name+", OpenSSH's client", res.OpenSSH)
		if host > 0 {
			res.Summary.OpenSSHRatio = res.Summary.OpenSSHMBps / host
		}
	}
	if len(res.Echo) > 0 {
		e := medianEcho(res.Echo)
		res.Summary.Echo = &e
	}
	if len(res.Create) > 0 {
		var p50, p90, mx, del []time.Duration
		for _, c := range res.Create {
			p50, p90, mx, del = append(p50, c.P50), append(p90, c.P90), append(mx, c.Max), append(del, c.DeleteP50)
		}
		res.Summary.Create = &createResult{N: res.Create[0].N, P50: median(p50), P90: median(p90), Max: median(mx), DeleteP50: median(del)}
	}
}

// writeTable prints r's lines of the table.
func (r *remote) writeTable(p func(format string, a ...any)) {
	res, s := r.res, &r.res.Summary
	switch {
	case res.Skipped != "":
		p("%-26s skipped: %s", r.name, res.Skipped)
		return
	case len(res.Flood) == 0:
		p("%-26s FAILED: %s", r.name, res.Failed)
		return
	}
	p("%-26s %6.1f MB/s   %.2fx host", r.name+", 1 client", s.MBps, s.Ratio)
	switch {
	case s.OpenSSHMBps > 0:
		p("%-26s %6.1f MB/s   %.2fx host   (the same sshd and flood; ptyhost's path gets %.2fx this)", r.name+", OpenSSH client",
			s.OpenSSHMBps, s.OpenSSHRatio, s.MBps/s.OpenSSHMBps)
	case res.OpenSSHFailed != "":
		p("%-26s FAILED: %s", r.name+", OpenSSH client", res.OpenSSHFailed)
	}
	if s.Echo != nil {
		p("%-26s p50 %-7s p99 %s", r.name+" echo", us(s.Echo.P50), us(s.Echo.P99))
	}
	name := r.name + " create"
	if r.hold {
		name += " (warm)"
	}
	if c := s.Create; c != nil {
		p("%-26s p50 %-7s p90 %-7s (delete p50 %s)", name, ms(c.P50), ms(c.P90), ms(c.DeleteP50))
	}
	if res.Failed != "" {
		p("%-26s FAILED after %d runs: %s", r.name, len(res.Flood), res.Failed)
	}
}

// runsLine describes every run of r, for the table's "runs" lines; "" if
// nothing was measured.
func (r *remote) runsLine() string {
	var b []string
	for i, f := range r.res.Flood {
		x := fmt.Sprintf("%.1f MB/s", f.MBps)
		if i < len(r.res.OpenSSH) {
			x += fmt.Sprintf(" (OpenSSH client %.1f)", r.res.OpenSSH[i].MBps)
		}
		if i < len(r.res.Echo) {
			x += fmt.Sprintf(", echo %s/%s", us(r.res.Echo[i].P50), us(r.res.Echo[i].P99))
		}
		if i < len(r.res.Create) {
			x += fmt.Sprintf(", create p50 %s", ms(r.res.Create[i].P50))
		}
		b = append(b, x)
	}
	return strings.Join(b, " | ")
}

// ms formats a duration in milliseconds: one decimal below 10 ms.
func ms(d time.Duration) string {
	m := float64(d) / float64(time.Millisecond)
	if m < 10 {
		return fmt.Sprintf("%.1fms", m)
	}
	return fmt.Sprintf("%.0fms", m)
}
