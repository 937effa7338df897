package pluginhost

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// Tests of plugin processes that outlive their Plugins: Detach leaves them
// running with their sessions, a later Load on the same socket directory
// reattaches to them, through the real host plugin.

// durableOptions are Options over the host plugin with a socket directory
// of the test's own, so that its generations are durable.
func durableOptions(t *testing.T) Options {
	return Options{
		Dir: testbin.PluginDir(t, "host"), SocketDir: filepath.Join(t.TempDir(), "run"),
		// Whatever a failing test leaves running ends soon.
		OrphanTimeout: 30 * time.Second, RestartBackoff: 10 * time.Millisecond,
	}
}

// counterCommand prints 0, 1, 2, … one a line, every 5 ms.
var counterCommand = []string{"/bin/sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.005; done"}

// spawnHost starts a session in the host plugin of p.
func spawnHost(ctx context.Context, t *testing.T, p *Plugins, id string, cmd []string) shared.PTY {
	t.Helper()
	env, err := p.Environment("HOST")
	if err != nil {
		t.Fatal(err)
	}
	pty, err := env.Spawn(ctx, shared.SpawnRequest{SessionID: id, EnvironmentID: "host", EnvironmentType: "HOST",
		Command: cmd, Size: shared.Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatalf("spawning %s: %v", id, err)
	}
	return pty
}

// ptyReader reads a PTY in a goroutine of its own, which ends with the
// PTY's stream, so that the test can wait for output under a deadline.
type ptyReader struct {
	out  []byte
	c    chan []byte
	errC chan error
}

func readPTY(pty shared.PTY) *ptyReader {
	r := &ptyReader{c: make(chan []byte), errC: make(chan error, 1)}
	go func() {
		for {
			b := make([]byte, 4096)
			n, err := pty.Read(b)
			if n > 0 {
				r.c <- b[:n]
			}
			if err != nil {
				r.errC <- err
				return
			}
		}
	}()
	return r
}

// until reads until cond holds of all the output read.
func (r *ptyReader) until(ctx context.Context, t *testing.T, what string, cond func([]byte) bool) {
	t.Helper()
	for !cond(r.out) {
		select {
		case b := <-r.c:
			r.out = append(r.out, b...)
		case err := <-r.errC:
			t.Fatalf("session stream ended before %s: %v; output %q", what, err, r.out)
		case <-ctx.Done():
			t.Fatalf("no %s before the deadline; output %q", what, r.out)
		}
	}
}

// end waits for the reading goroutine to end, which the PTY's Detach or
// Close makes it do, dropping what it still reads.
func (r *ptyReader) end(ctx context.Context, t *testing.T) {
	t.Helper()
	for {
		select {
		case <-r.c:
		case <-r.errC:
			return
		case <-ctx.Done():
			t.Fatal("the session stream did not end")
		}
	}
}

// counted checks that out is the counter's output from 0 on, every value
// once and in order, and returns how many whole lines it holds.
func counted(t *testing.T, out []byte) int {
	t.Helper()
	lines := strings.Split(string(out), "\r\n")
	lines = lines[:len(lines)-1] // the last is partial, or empty
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d of the output is %q, want %d: a gap or a duplicate", i, l, i)
		}
	}
	return len(lines)
}

// atLeast is a condition on counter output: n whole lines.
func atLeast(n int) func([]byte) bool {
	return func(b []byte) bool { return bytes.Count(b, []byte("\r\n")) >= n }
}

// killAtEnd kills the process group pid when the test ends, if that
// process still runs, and reaps it: for plugin processes a test leaves
// running. They are this process's children, which a Plugins that let
// them go does not reap (a server that detaches exits next). The watch
// (a pidfd on Linux) tells that very process from whatever took its pid
// once something else reaped it: with the whole suite running, pids come
// round again within minutes, and a kill by the pid alone could reach
// another test's plugin, which leads a group of the same number.
func killAtEnd(t *testing.T, pid int) {
	w, err := watchPID(pid)
	if err != nil {
		return // gone and reaped already: nothing of it to kill
	}
	t.Cleanup(func() {
		defer w.stop()
		_ = w.killGroup() // only while it runs
		select {
		case <-w.exited:
			w.reap()
		case <-time.After(10 * time.Second):
			t.Errorf("plugin process %d outlived SIGKILL by 10 s", pid)
		}
	})
}

// A session survives its Plugins' Detach, with the plugin process; a new
// Load on the same socket directory reattaches to the process, lists the
// session, and attaching from an offset resumes its output exactly: the
// counter it printed while no Plugins was attached comes without a gap or
// a duplicate, whether the attach starts where the first reader stopped
// or at 0.
func TestReattachKeepsSessions(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p1, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	before, _ := p1.Plugin("host")
	pty := spawnHost(ctx, t, p1, "counter", counterCommand)
	r := readPTY(pty)
	r.until(ctx, t, "20 counter lines", atLeast(20))
	pty.(shared.Detacher).Detach()
	r.end(ctx, t)
	if err := pty.Close(); err != nil {
		t.Errorf("Close after Detach: %v", err)
	}
	first := r.out
	n1 := counted(t, first)

	within(t, 5*time.Second, "Detach", func() { p1.Detach(ctx) })
	if !alive(before.PID) {
		t.Fatalf("the plugin process %d is gone after Detach", before.PID)
	}
	if st, _ := p1.Plugin("host"); st.State != core.PluginStopped {
		t.Errorf("after Detach: %+v, want stopped", st)
	}
	if _, err := p1.Environment("HOST"); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("Environment after Detach: %v, want ErrPluginExited", err)
	}
	if _, err := os.Stat(recordPath(opts.SocketDir, "host")); err != nil {
		t.Fatalf("the reattach record after Detach: %v", err)
	}

	var p2 *Plugins
	within(t, reattachTimeout, "Load", func() { p2, err = Load(ctx, opts) })
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	survivors, err := p2.Survivors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(survivors) != 1 || survivors[0].ID != "counter" || survivors[0].EnvironmentType != "HOST" ||
		survivors[0].EnvironmentID != "host" || survivors[0].StartOffset != 0 || survivors[0].EndOffset < int64(len(first)) ||
		survivors[0].Exit != nil || survivors[0].Keeper == nil || survivors[0].Foreign {
		t.Fatalf("Survivors() = %+v, want the running counter session, with at least %d bytes kept, not foreign", survivors, len(first))
	}
	st := waitPlugin(ctx, t, p2, "host", "running", running)
	if st.PID != before.PID || st.Restarts != 0 {
		t.Errorf("after the reattach: %+v, want running with pid %d", st, before.PID)
	}

	// Where the first reader stopped: the very next bytes.
	resumed, start, err := survivors[0].Keeper.Attach(ctx, "counter", int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	if start != int64(len(first)) {
		t.Errorf("attach at %d started at %d", len(first), start)
	}
	r2 := readPTY(resumed)
	r2.until(ctx, t, "more counter lines", atLeast(5))
	if whole := counted(t, append(slices.Clone(first), r2.out...)); whole <= n1 {
		t.Errorf("%d lines in all, %d before the Detach", whole, n1)
	}

	// Detached (the supervised PTY passes it on), the session stays.
	resumed.(shared.Detacher).Detach()
	r2.end(ctx, t)
	if err := resumed.Close(); err != nil {
		t.Errorf("Close after Detach: %v", err)
	}

	// From 0: the whole output, the first reader's a prefix of it, going on.
	all, start, err := survivors[0].Keeper.Attach(ctx, "counter", 0)
	if err != nil {
		t.Fatal(err)
	}
	if start != 0 {
		t.Errorf("attach at 0 started at %d", start)
	}
	r3 := readPTY(all)
	r3.until(ctx, t, "the counter past the detach", atLeast(n1+50))
	if !bytes.HasPrefix(r3.out, first) {
		t.Errorf("the output from 0 does not begin with what was read before the Detach")
	}
	counted(t, r3.out)

	// The session is a supervised PTY of the reattached process: it ends
	// with the Plugins.
	within(t, 5*time.Second, "Close", p2.Close)
	r3.end(ctx, t)
	_ = all.Close()
	if alive(before.PID) {
		t.Errorf("the plugin process %d outlived Close", before.PID)
	}
}

// The reattach record: in the private socket directory, mode 0600,
// holding where the plugin listens, what it is, and the TLS material, and
// nothing else; removed, with the process, by Shutdown.
func TestReattachRecord(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("host")
	path := recordPath(opts.SocketDir, "host")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(opts.SocketDir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("socket dir: %v, %v; want mode 0700", di, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	want := []string{"addr", "client_cert", "client_key", "launch", "network", "path", "pid", "protocol_version", "server_cert", "sha256"}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Errorf("record fields %q, want %q", got, want)
	}
	if path := os.Getenv("PATH"); strings.Contains(string(b), path) {
		t.Errorf("the record holds the value of the plugin's PATH, %q; want only its checksum", path)
	}
	rec, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PID != st.PID || rec.Network != "unix" || rec.Addr != pluginSocket(t, p, "host") || filepath.Dir(rec.Addr) != opts.SocketDir ||
		rec.ProtocolVersion != 1 || rec.Path != st.Path || rec.SHA256 != st.SHA256 {
		t.Errorf("record %+v; plugin %+v", rec, st)
	}
	if _, err := rec.tlsConfig(); err != nil {
		t.Errorf("the record's TLS material: %v", err)
	}
	if strings.Contains(string(b), "PTYHOST_") {
		t.Errorf("the record mentions the server's settings:\n%s", b)
	}

	// Shutdown hangs up the sessions of a held plugin too.
	pty := spawnHost(ctx, t, p, "held", []string{"sleep", "3600"})
	defer pty.Close()
	kids := childPIDs(st.PID)
	if len(kids) == 0 {
		t.Fatal("the session's process is not the plugin's child")
	}
	p.Close()
	waitDead(ctx, t, kids)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record after Close: %v, want it removed", err)
	}
	if alive(st.PID) {
		t.Errorf("the plugin process %d outlived Close", st.PID)
	}
}

// detached loads the host plugin durably, starts a session and detaches,
// and returns the plugin's pid, left running.
func detached(ctx context.Context, t *testing.T, opts Options) int {
	t.Helper()
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("host")
	if st.State != core.PluginRunning {
		t.Fatalf("host plugin: %+v", st)
	}
	killAtEnd(t, st.PID)
	pty := spawnHost(ctx, t, p, "kept", []string{"sleep", "3600"})
	pty.(shared.Detacher).Detach()
	_ = pty.Close()
	p.Detach(ctx)
	if !alive(st.PID) {
		t.Fatalf("the plugin process %d is gone after Detach", st.PID)
	}
	return st.PID
}

// reattached returns a Plugins that reattached to the host plugin process
// a previous one left running (detached), and that process's pid; the
// Plugins is closed at the test's end.
func reattached(ctx context.Context, t *testing.T, opts Options) (*Plugins, int) {
	t.Helper()
	old := detached(ctx, t, opts)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if st := waitPlugin(ctx, t, p, "host", "reattach", running); st.PID != old {
		t.Fatalf("host plugin %+v, want the reattached pid %d", st, old)
	}
	return p, old
}

// editRecord rewrites the host plugin's record with edit.
func editRecord(t *testing.T, dir string, edit func(*reattachRecord)) {
	t.Helper()
	path := recordPath(dir, "host")
	rec, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(rec)
	if err := writeRecord(path, rec); err != nil {
		t.Fatal(err)
	}
}

// selfSignedPEM makes a certificate and key that no plugin trusts.
func selfSignedPEM(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A record that cannot be reattached through fails over to a fresh launch
// within the bound, and is replaced by the fresh process's; a live process
// it named is left running (to its orphan timeout).
func TestReattachFailsOver(t *testing.T) {
	tests := []struct {
		name  string
		live  bool // a detached plugin process runs
		spoil func(t *testing.T, dir string)
		log   []string
	}{
		{"not JSON", false, func(t *testing.T, dir string) {
			if err := os.WriteFile(recordPath(dir, "host"), []byte(`{"pid": 12`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"level=WARN", "reattach record is unusable"}},
		{"process gone", false, func(t *testing.T, dir string) {
			pid := deadPID(t)
			if err := writeRecord(recordPath(dir, "host"), &reattachRecord{PID: pid, Network: "unix", Addr: filepath.Join(dir, "plugin1"),
				ProtocolVersion: 1, ClientCert: "x", ClientKey: "x", ServerCert: "x"}); err != nil {
				t.Fatal(err)
			}
		}, nil}, // swept at load: a record of a dead process
		{"certificate the plugin does not trust", true, func(t *testing.T, dir string) {
			editRecord(t, dir, func(r *reattachRecord) { r.ClientCert, r.ClientKey = selfSignedPEM(t) })
		}, []string{"level=WARN", "could not reattach"}},
		{"server certificate of another", true, func(t *testing.T, dir string) {
			editRecord(t, dir, func(r *reattachRecord) { r.ServerCert, _ = selfSignedPEM(t) })
		}, []string{"level=WARN", "could not reattach"}},
		{"garbled key", true, func(t *testing.T, dir string) {
			editRecord(t, dir, func(r *reattachRecord) {
				r.ClientKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
			})
		}, []string{"level=WARN", "could not reattach", "client certificate"}},
		{"no socket there", true, func(t *testing.T, dir string) {
			editRecord(t, dir, func(r *reattachRecord) { r.Addr = filepath.Join(dir, "plugin0") })
		}, []string{"level=WARN", "could not reattach"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := pluginsContext(t)
			opts := durableOptions(t)
			old := 0
			if tt.live {
				old = detached(ctx, t, opts)
			} else if err := os.MkdirAll(opts.SocketDir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, opts.SocketDir)
			logs := newLogRecords()
			opts.Logger = slog.New(logs)
			var p *Plugins
			var err error
			within(t, reattachTimeout+time.Second, "Load", func() { p, err = Load(ctx, opts) })
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if s, err := p.Survivors(ctx); err != nil || len(s) != 0 {
				t.Errorf("Survivors() = %+v, %v; want none", s, err)
			}
			st := waitPlugin(ctx, t, p, "host", "fresh launch", running)
			if st.PID == old {
				t.Errorf("the plugin runs as pid %d, the process it could not reattach to", old)
			}
			if len(tt.log) > 0 {
				logs.wait(ctx, t, append(tt.log, "plugin=host")...)
			}
			if old != 0 && !alive(old) {
				t.Errorf("the process %d the record named was killed", old)
			}
			if rec, err := readRecord(recordPath(opts.SocketDir, "host")); err != nil || rec.PID != st.PID {
				t.Errorf("the record after the fresh launch: %+v, %v; want the new process's (pid %d)", rec, err, st.PID)
			}
			// The fresh plugin serves.
			pty := spawnHost(ctx, t, p, "fresh", []string{"echo", "fresh"})
			r := readPTY(pty)
			r.until(ctx, t, "the session's output", func(b []byte) bool { return bytes.Contains(b, []byte("fresh")) })
			_ = pty.Close()
			r.end(ctx, t)
		})
	}
}

// A process that runs another executable than the configured one (an
// upgrade installed the plugins elsewhere) is reattached to all the same:
// it speaks this server's protocol version.
func TestReattachAnotherExecutable(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	old := detached(ctx, t, opts)
	editRecord(t, opts.SocketDir, func(r *reattachRecord) { r.Path = "/opt/ptyhost-old/plugins/ptyhost-plugin-host" })
	logs := newLogRecords()
	opts.Logger = slog.New(logs)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	logs.wait(ctx, t, "level=INFO", "plugin=host", "runs another executable", "running=/opt/ptyhost-old/plugins/ptyhost-plugin-host")
	if st, _ := p.Plugin("host"); st.PID != old || st.State != core.PluginRunning {
		t.Errorf("host plugin %+v, want the reattached process %d running", st, old)
	}
	s, err := p.Survivors(ctx)
	if err != nil || len(s) != 1 || s[0].ID != "kept" {
		t.Errorf("Survivors() = %+v, %v; want the session kept", s, err)
	}
}

// A process that speaks another protocol version (an upgrade changed it)
// is not reattached to, nor touched: it is left to its orphan timeout,
// the log says so, and a fresh process serves.
func TestReattachProtocolMismatch(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	old := detached(ctx, t, opts)
	editRecord(t, opts.SocketDir, func(r *reattachRecord) { r.ProtocolVersion = 99 })
	logs := newLogRecords()
	opts.Logger = slog.New(logs)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	logs.wait(ctx, t, "level=ERROR", "plugin=host", fmt.Sprintf("pid %d", old), "protocol version 99", "supports 1",
		"its sessions are left to its orphan timeout")
	st := waitPlugin(ctx, t, p, "host", "fresh launch", running)
	if st.PID == old || st.Restarts != 0 {
		t.Errorf("host plugin %+v, want a fresh process, not %d", st, old)
	}
	if !alive(old) {
		t.Errorf("the process %d of protocol version 99 was killed", old)
	}
	pty := spawnHost(ctx, t, p, "fresh", []string{"echo", "served"})
	r := readPTY(pty)
	r.until(ctx, t, "the session's output", func(b []byte) bool { return bytes.Contains(b, []byte("served")) })
	_ = pty.Close()
	r.end(ctx, t)
}

// A plugin nobody holds for the orphan timeout hangs its sessions up and
// exits.
func TestOrphanTimeout(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	opts.OrphanTimeout = time.Second
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("host")
	killAtEnd(t, st.PID)
	pty := spawnHost(ctx, t, p, "orphan", []string{"sleep", "3600"})
	kids := childPIDs(st.PID)
	if len(kids) == 0 {
		t.Fatal("the session's process is not the plugin's child")
	}
	pty.(shared.Detacher).Detach()
	_ = pty.Close()
	p.Detach(ctx)
	if !alive(st.PID) {
		t.Fatal("the plugin process is gone at once after Detach")
	}
	start := time.Now()
	deadline, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	waitDead(deadline, t, append([]int{st.PID}, kids...))
	if took := time.Since(start); took < opts.OrphanTimeout/2 {
		t.Errorf("the plugin exited %v after Detach, before its orphan timeout (%v)", took, opts.OrphanTimeout)
	}
}

// A reattached process that is killed is seen dead from its pidfd, and
// the plugin is launched again by supervision.
func TestReattachedCrashRestarts(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p, old := reattached(ctx, t, opts)
	socket := pluginSocket(t, p, "host")
	killPlugin(t, old)
	st := waitPlugin(ctx, t, p, "host", "restart", func(st core.PluginStatus) bool { return running(st) && st.PID != old })
	if st.Restarts != 1 {
		t.Errorf("after the crash: %+v, want 1 restart", st)
	}
	if alive(old) {
		t.Errorf("the killed process %d is still there (a zombie nobody reaps?)", old)
	}
	if rec, err := readRecord(recordPath(opts.SocketDir, "host")); err != nil || rec.PID != st.PID {
		t.Errorf("the record after the restart: %+v, %v; want pid %d", rec, err, st.PID)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed plugin's socket %s is still there (%v)", socket, err)
	}
}

// A second Plugins on a socket directory another one uses neither
// reattaches to the first one's processes nor makes records of its own.
func TestReattachOnlyByTheOwner(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p1, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	first, _ := p1.Plugin("host")
	p2, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := p2.Plugin("host")
	if second.PID == first.PID || second.State != core.PluginRunning {
		t.Errorf("the second Plugins' host plugin: %+v; the first's pid is %d", second, first.PID)
	}
	p2.Detach(ctx) // not durable: stopped
	if alive(second.PID) {
		t.Errorf("the second Plugins' plugin %d outlived its Detach", second.PID)
	}
	if rec, err := readRecord(recordPath(opts.SocketDir, "host")); err != nil || rec.PID != first.PID {
		t.Errorf("the record: %+v, %v; want the first Plugins' (pid %d)", rec, err, first.PID)
	}
	if !alive(first.PID) {
		t.Errorf("the first Plugins' plugin %d is gone", first.PID)
	}
}

// The sweep at load leaves what a live plugin process may be reattached
// through, and removes what dead ones left.
func TestSweepSparesLivePlugins(t *testing.T) {
	dir := t.TempDir()
	listen := func(name string, keep bool) string {
		path := filepath.Join(dir, name)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			t.Cleanup(func() { ln.Close() })
		} else {
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}
		return path
	}
	listening := listen("plugin1", true)   // a live plugin without a record
	stale := listen("plugin2", false)      // nobody listens
	recorded := listen("plugin3", false)   // named by a live process's record
	deadSocket := listen("plugin4", false) // named by a dead process's record
	record := func(name string, pid int, addr string) string {
		path := recordPath(dir, name)
		if err := writeRecord(path, &reattachRecord{PID: pid, Network: "unix", Addr: addr, ProtocolVersion: 1,
			ClientCert: "x", ClientKey: "x", ServerCert: "x"}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	liveRecord := record("live", os.Getpid(), recorded)
	deadRecord := record("dead", deadPID(t), deadSocket)
	temp := filepath.Join(dir, ".reattach-123.tmp")
	if err := os.WriteFile(temp, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	sweepSockets(dir)
	for _, kept := range []string{listening, recorded, liveRecord} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s was swept: %v", filepath.Base(kept), err)
		}
	}
	for _, gone := range []string{stale, deadSocket, deadRecord, temp} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", filepath.Base(gone), err)
		}
	}
}

// A plugin process with no session to keep is stopped when the server
// detaches, record and all: it has nothing to wait for the next server
// with.
func TestDetachStopsPluginWithoutSessions(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := p.Plugin("host")
	if st.State != core.PluginRunning {
		t.Fatalf("host plugin: %+v", st)
	}
	killAtEnd(t, st.PID)
	if _, err := readRecord(recordPath(opts.SocketDir, "host")); err != nil {
		t.Fatalf("no reattach record while serving: %v", err)
	}
	within(t, 5*time.Second, "Detach", func() { p.Detach(ctx) })
	if alive(st.PID) {
		t.Errorf("the plugin process %d, which kept no session, outlived Detach", st.PID)
	}
	if _, err := os.Stat(recordPath(opts.SocketDir, "host")); !os.IsNotExist(err) {
		t.Errorf("the reattach record of a stopped plugin: %v, want it removed", err)
	}
}

// A Load whose ctx ends (the server is stopped as it starts) launches
// nothing, lets go of what it reattached to, and keeps the record: the
// next server still finds the process and its sessions.
func TestLoadStoppedWhileReattaching(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	old := detached(ctx, t, opts)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if p, err := Load(stopped, opts); err == nil {
		p.Close()
		t.Fatal("Load with an ended ctx succeeded")
	}
	if !alive(old) {
		t.Fatalf("the plugin process %d did not outlive the stopped Load", old)
	}
	if rec, err := readRecord(recordPath(opts.SocketDir, "host")); err != nil || rec.PID != old {
		t.Fatalf("record after the stopped Load: %+v, %v; want the process %d's", rec, err, old)
	}
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if s, err := p.Survivors(ctx); err != nil || len(s) != 1 || s[0].ID != "kept" {
		t.Errorf("Survivors() after the stopped Load = %+v, %v; want the session kept", s, err)
	}
}

// TestMayKeep: a reattached plugin process may keep the sessions of the
// types it declared that are its own: a built-in's type is the
// built-in's, a claimed type its claimant's, and an unclaimed one its
// only if no other reattached plugin declares it; a session of a type it
// did not declare is foreign.
func TestMayKeep(t *testing.T) {
	host := &supervised{name: "host", builtin: true}
	zz := &supervised{name: "zz", adopted: &generation{info: shared.Info{Types: []string{"EVIL", "HOST", "NEW", "host", "BOTH"}}}}
	yy := &supervised{name: "yy", adopted: &generation{info: shared.Info{Types: []string{"BOTH"}}}}
	p := &Plugins{plugins: []*supervised{host, yy, zz}, byType: map[string]*supervised{"EVIL": zz, "host": yy}}
	hostGen := &generation{info: shared.Info{Types: []string{"HOST"}}}
	for _, tt := range []struct {
		s    *supervised
		g    *generation
		typ  string
		want bool
	}{
		{host, hostGen, "HOST", true},  // its own, claimed or not yet
		{host, hostGen, "EVIL", false}, // not declared
		{zz, zz.adopted, "EVIL", true},
		{zz, zz.adopted, "HOST", false}, // declared, but the built-in's
		{zz, zz.adopted, "host", false}, // declared, but yy claimed it
		{zz, zz.adopted, "NEW", true},   // declared, and nobody else does
		{zz, zz.adopted, "BOTH", false}, // unclaimed, and yy declares it too
		{zz, zz.adopted, "DOCKER", false},
	} {
		if got := p.mayKeep(tt.s, tt.g, tt.typ); got != tt.want {
			t.Errorf("mayKeep(%s, %s) = %v, want %v", tt.s.name, tt.typ, got, tt.want)
		}
	}
}

// A server that reattaches to a plugin process launched with other
// variables than it would launch the plugin with says which: the process
// keeps the environment it started with, and its new sessions get it.
func TestReattachWarnsOfAnotherLaunch(t *testing.T) {
	ctx := pluginsContext(t)
	t.Setenv("REATTACH_TEST_SECRET", "one")
	opts := durableOptions(t)
	detached(ctx, t, opts)
	const warning = "reattaching to a plugin process an earlier server launched with other variables"

	load := func() (*Plugins, *logRecords) {
		t.Helper()
		logs := newLogRecords()
		o := opts
		o.Logger = slog.New(logs)
		p, err := loadPlugins(ctx, t, o)
		if err != nil {
			t.Fatal(err)
		}
		waitPlugin(ctx, t, p, "host", "reattach", running)
		return p, logs
	}
	p, logs := load()
	logs.store.mu.Lock()
	for _, l := range logs.store.lines {
		if strings.Contains(l, warning) {
			t.Errorf("reattached with the same environment, and warned: %s", l)
		}
	}
	logs.store.mu.Unlock()
	// The record's checksums are salted: a value's plain SHA-256 (one
	// computed beforehand, or in another record) is not in it.
	records, _ := filepath.Glob(filepath.Join(opts.SocketDir, "*"+recordSuffix))
	if len(records) == 0 {
		t.Fatal("no reattach record")
	}
	plain := sha256.Sum256([]byte("one"))
	for _, r := range records {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), hex.EncodeToString(plain[:])) || !strings.Contains(string(b), `"salt":`) {
			t.Errorf("%s holds a plain checksum of a variable, or no salt", r)
		}
	}
	p.Detach(ctx)

	t.Setenv("REATTACH_TEST_SECRET", "two")
	t.Setenv("REATTACH_TEST_NEW", "x")
	p, logs = load()
	defer p.Close()
	if l := logs.wait(ctx, t, warning); !strings.Contains(l, "variables=REATTACH_TEST_NEW,REATTACH_TEST_SECRET") || !strings.Contains(l, "args_changed=false") || strings.Contains(l, "two") {
		t.Errorf("warning %q, want the two variables named, and no value", l)
	}
}
