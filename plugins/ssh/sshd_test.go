package main

// Test helpers: the sshd that scripts/services/sshd.sh runs, private sshds
// a test can kill or freeze, keys, known_hosts files and remote directories.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/internal/leakcheck"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// Variables the tests set in their own environment, which the plugin
// process inherits (core strips PTYHOST_* from a plugin's environment, so
// the secrets cannot be passed under their PTYHOST_TEST_* names).
const (
	envPassword      = "SSHTEST_PASSWORD"
	envWrongPassword = "SSHTEST_WRONG_PASSWORD"
	envPassphrase    = "SSHTEST_PASSPHRASE"
)

func TestMain(m *testing.M) {
	if pw := os.Getenv("PTYHOST_TEST_SSH_PASSWORD"); pw != "" {
		os.Setenv(envPassword, pw)
		os.Setenv(envWrongPassword, pw+"-wrong")
		os.Setenv(envPassphrase, os.Getenv("PTYHOST_TEST_SSH_KEY_PASSPHRASE"))
	}
	leakcheck.Main(m)
}

// sshdInfo describes the test sshd, from the lines sshd.sh start prints.
type sshdInfo struct {
	host       string
	port       int
	user       string
	key        string // unencrypted client key
	keyEnc     string // passphrase-protected client key
	hostKeyPub string // the server's public host key file
	sshdConfig string // its sshd_config
	sshd       string // the sshd binary
}

// testSSHD returns the test sshd. Without one it skips the test, or fails
// it when PTYHOST_INTEGRATION=1 (make test).
func testSSHD(t testing.TB) *sshdInfo {
	t.Helper()
	get := os.Getenv
	port, _ := strconv.Atoi(get("PTYHOST_TEST_SSH_PORT"))
	s := &sshdInfo{
		host: get("PTYHOST_TEST_SSH_HOST"), port: port, user: get("PTYHOST_TEST_SSH_USER"),
		key: get("PTYHOST_TEST_SSH_KEY"), keyEnc: get("PTYHOST_TEST_SSH_KEY_ENCRYPTED"),
		hostKeyPub: get("PTYHOST_TEST_SSH_HOST_KEY_PUB"), sshdConfig: get("PTYHOST_TEST_SSHD_CONFIG"), sshd: get("PTYHOST_TEST_SSHD"),
	}
	if s.host == "" || s.port == 0 || s.user == "" || s.key == "" || s.hostKeyPub == "" || os.Getenv(envPassword) == "" {
		msg := "no sshd: run scripts/services/sshd.sh start (make test does) and export its PTYHOST_TEST_SSH* lines"
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return s
}

// hostKey returns the server's public host key.
func (s *sshdInfo) hostKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(s.hostKeyPub)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// knownHosts writes a known_hosts file with the server's key for port.
func (s *sshdInfo) knownHosts(t testing.TB, port int) string {
	t.Helper()
	return writeKnownHosts(t, s.host, port, s.hostKey(t))
}

func writeKnownHosts(t testing.TB, host string, port int, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("# ptyhost test\n[%s]:%d %s", host, port, ssh.MarshalAuthorizedKey(key))
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// config returns a working config for the sshd at port (0: the test
// sshd), with extra fields merged in (a nil value deletes one).
func (s *sshdInfo) config(t testing.TB, port int, extra map[string]any) json.RawMessage {
	t.Helper()
	if port == 0 {
		port = s.port
	}
	c := map[string]any{
		"host":          s.host,
		"port":          port,
		"user":          s.user,
		"identity_file": s.key,
		"known_hosts":   s.knownHosts(t, port),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeKey writes a new ed25519 private key in OpenSSH format, encrypted
// when passphrase is set, and returns its public key.
func writeKey(t testing.TB, path, passphrase string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// remoteDir creates a directory the test user can enter (the remote host
// is this machine), named name inside a fresh directory under /tmp.
func (s *sshdInfo) remoteDir(t testing.TB, name string) string {
	t.Helper()
	base, err := os.MkdirTemp("", "ptyhost-ssh-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := user.Lookup(s.user); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = os.Chown(dir, uid, gid)
	}
	return dir
}

// privateSSHD is an sshd of the test's own, with the test sshd's config on
// another port, that the test may kill or freeze without disturbing other
// tests. Its cleanup kills it and every connection process it forked.
type privateSSHD struct {
	port int
	cmd  *exec.Cmd
	log  string
	conf string // its sshd_config
	sshd string // the sshd binary
}

var (
	portLine = regexp.MustCompile(`(?m)^(Port|PidFile) .*$`)
	// maxSessionsLine matches a MaxSessions setting: a private sshd keeps
	// OpenSSH's default (10) unless the test sets it, whatever the test
	// sshd's config says (sshd.sh set 100 before issue 8).
	maxSessionsLine = regexp.MustCompile(`(?mi)^\s*MaxSessions\s.*\n?`)
)

// startPrivate starts a private sshd. settings are sshd_config lines put
// before the rest (sshd takes the first value of a keyword), such as
// "MaxSessions 100".
func (s *sshdInfo) startPrivate(t testing.TB, settings ...string) *privateSSHD {
	t.Helper()
	if s.sshdConfig == "" || s.sshd == "" {
		msg := "sshd.sh did not say where its sshd_config and sshd are"
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	base, err := os.ReadFile(s.sshdConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		conf := portLine.ReplaceAllStringFunc(string(base), func(l string) string {
			if strings.HasPrefix(l, "Port") {
				return fmt.Sprintf("Port %d", port)
			}
			return fmt.Sprintf("PidFile %q", filepath.Join(dir, "sshd.pid"))
		})
		conf = maxSessionsLine.ReplaceAllString(conf, "")
		if len(settings) > 0 {
			conf = strings.Join(settings, "\n") + "\n" + conf
		}
		confPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &privateSSHD{port: port, log: filepath.Join(dir, "sshd.log"), conf: confPath, sshd: s.sshd}
		p.cmd = exec.Command(s.sshd, "-D", "-f", confPath, "-E", p.log)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if waitListening(port, 10*time.Second) {
			t.Cleanup(p.stop)
			return p
		}
		p.stop()
		if attempt == 2 {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("private sshd on port %d did not start:\n%s", port, b)
		}
	}
}

// processes returns the sshd and every process it forked (connections).
func (p *privateSSHD) processes() []int {
	pids := []int{p.cmd.Process.Pid}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, childrenOf(pids[i])...)
	}
	return pids
}

// signal sends sig to the sshd and all its processes.
func (p *privateSSHD) signal(sig syscall.Signal) {
	for _, pid := range p.processes() {
		_ = syscall.Kill(pid, sig)
	}
}

func (p *privateSSHD) stop() {
	pids := p.processes()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = p.cmd.Wait()
}

// setting returns the value sshd uses for keyword (lower case, as
// sshd -T prints it), with its defaults applied.
func (p *privateSSHD) setting(t testing.TB, keyword string) string {
	t.Helper()
	out, err := exec.Command(p.sshd, "-T", "-f", p.conf).CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if k, v, _ := strings.Cut(strings.TrimSpace(line), " "); k == keyword {
			return v
		}
	}
	t.Fatalf("sshd -T does not print %s:\n%s", keyword, out)
	return ""
}

// logText returns the sshd's log so far.
func (p *privateSSHD) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// accepted counts the logins the sshd logged.
func (p *privateSSHD) accepted() int {
	b, _ := os.ReadFile(p.log)
	return bytes.Count(b, []byte("Accepted publickey for "))
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(string(f[1])); ppid == pid {
				kids = append(kids, child)
			}
		}
	}
	return kids
}

// established counts the established TCP connections to 127.0.0.1:port
// (the client ends), from /proc/net/tcp.
func established(t testing.TB, port int) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; 01 is ESTABLISHED.
		if len(fields) > 3 && fields[2] == want && fields[3] == "01" {
			n++
		}
	}
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(port int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			// sshd greets first: wait for its banner.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-") {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// loadPlugins starts the real plugin binary through pluginhost.Load.
func loadPlugins(t testing.TB) *pluginhost.Plugins {
	t.Helper()
	return loadPluginsNamed(t, "ssh")
}

// loadPluginsNamed starts the named plugins' binaries.
func loadPluginsNamed(t testing.TB, names ...string) *pluginhost.Plugins {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: testbin.PluginDir(t, names...), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugins.Close)
	waitStarted(t, ctx, plugins)
	return plugins
}

// waitStarted waits until the plugins' first starts have ended (they
// start in the background).
func waitStarted(t testing.TB, ctx context.Context, plugins *pluginhost.Plugins) {
	t.Helper()
	select {
	case <-plugins.Started():
	case <-ctx.Done():
		t.Fatalf("the plugins did not start: %v", ctx.Err())
	}
}

// loadSSH returns the SSH environment of a freshly started plugin process.
func loadSSH(t testing.TB) shared.Environment {
	t.Helper()
	env, err := loadPlugins(t).Environment(EnvironmentType)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
