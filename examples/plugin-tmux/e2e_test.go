package main

// End to end through a real ptyhost server: the server and the HOST plugin
// built from this repository, this plugin's binary pinned by its sha256 in
// the server's configuration file, a WebSocket client typing into a tmux
// session, and the tmux session outliving the server.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// repoRoot is the ptyhost repository this example sits in.
const repoRoot = "../.."

func TestThroughServer(t *testing.T) {
	needTmux(t)
	socket := newSocket(t)
	dir := t.TempDir()
	ptyhost := filepath.Join(dir, "ptyhost")
	pluginDir := filepath.Join(dir, "plugins")
	goBuild(t, repoRoot, ptyhost, "github.com/ptyhost/ptyhost/cmd/ptyhost")
	goBuild(t, repoRoot, filepath.Join(pluginDir, "ptyhost-plugin-host"), "./plugins/host")
	plugin := filepath.Join(pluginDir, "ptyhost-plugin-tmux")
	copyFile(t, pluginBinary(t), plugin)
	sum := sha256File(t, plugin)

	t.Run("pinned", func(t *testing.T) {
		srv := startServer(t, ptyhost, writeConfig(t, pluginDir, sum))

		p := srv.plugin(t, "tmux")
		if p.State != "running" || p.SHA256 != sum || !slices.Contains(p.Types, "TMUX") {
			t.Fatalf("plugin tmux: %+v; want running, sha256 %s, type TMUX", p, sum)
		}

		code, body := srv.request(t, "POST", "/api/v1/environments", map[string]any{
			"id": "t", "type": "TMUX", "config": map[string]any{"socket": socket, "keep": true},
		})
		if code != http.StatusCreated {
			t.Fatalf("create environment: %d %s", code, body)
		}
		code, body = srv.request(t, "POST", "/api/v1/environments", map[string]any{
			"id": "bad", "type": "TMUX", "config": map[string]any{"socket": socket, "kep": true},
		})
		if code != http.StatusBadRequest || !strings.Contains(string(body), `unknown field \"kep\"`) {
			t.Errorf("create environment with a bad config: %d %s; want 400 with the plugin's reason", code, body)
		}

		code, body = srv.request(t, "POST", "/api/v1/sessions", map[string]any{
			"id": "e2e", "environment_id": "t", "command": []string{"/bin/sh"},
		})
		if code != http.StatusCreated {
			t.Fatalf("create session: %d %s", code, body)
		}
		ws := srv.attach(t, "e2e")
		ws.send(t, "echo hi-$((1+1))\r")
		ws.expect(t, "hi-2")

		srv.stop(t) // hangs the session up
		// keep: the tmux session outlives the server, and is tmux's own.
		if out, err := exec.Command("tmux", "-L", socket, "has-session", "-t", "=e2e:").CombinedOutput(); err != nil {
			t.Fatalf("tmux session e2e did not outlive the server: %v %s", err, out)
		}
		out, err := exec.Command("tmux", "-L", socket, "show-options", "-w", "-v", "-t", "=e2e:", "remain-on-exit").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) == "on" {
			t.Errorf("remain-on-exit of the kept session: %q, %v; want it unset", out, err)
		}
	})

	t.Run("wrong checksum", func(t *testing.T) {
		wrong := strings.Repeat("0", 64)
		srv := startServer(t, ptyhost, writeConfig(t, pluginDir, wrong))

		p := srv.plugin(t, "tmux")
		if p.State != "refused" || !strings.Contains(p.Reason, "sha256") && !strings.Contains(p.Reason, "checksum") {
			t.Errorf("plugin tmux: %+v; want refused for its checksum", p)
		}
		t.Logf("plugin tmux: %s: %s", p.State, p.Reason)
		if h := srv.plugin(t, "host"); h.State != "running" {
			t.Fatalf("plugin host: %+v; want running", h)
		}
		code, body := srv.request(t, "POST", "/api/v1/environments", map[string]any{"id": "h", "type": "HOST"})
		if code != http.StatusCreated && code != http.StatusConflict {
			t.Fatalf("create HOST environment: %d %s", code, body)
		}
		code, body = srv.request(t, "POST", "/api/v1/sessions", map[string]any{
			"id": "h1", "environment_id": "h", "command": []string{"/bin/sh", "-c", "echo host-$((2+2)); sleep 30"},
		})
		if code != http.StatusCreated {
			t.Fatalf("create HOST session: %d %s", code, body)
		}
		srv.attach(t, "h1").expect(t, "host-4")
	})
}

// goBuild builds pkg, from dir, into out.
func goBuild(t *testing.T, dir, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeConfig writes the server's configuration file: the plugin
// directory, and the tmux plugin pinned to sum with an environment of
// PATH only.
func writeConfig(t *testing.T, pluginDir, sum string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ptyhost.hcl")
	config := fmt.Sprintf(`plugin_dir = %q
plugin "tmux" {
  sha256 = %q
  env    = { PATH = "/usr/local/bin:/usr/bin:/bin" }
}
`, pluginDir, sum)
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// server is a `ptyhost serve` process.
type server struct {
	url    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error // the process's exit

	stopOnce sync.Once
}

// startServer starts `ptyhost serve --config config` on a free port and an
// empty data directory; the test's cleanup stops it.
func startServer(t *testing.T, ptyhost, config string) *server {
	t.Helper()
	// --hang-up-on-stop: stopping the server ends its sessions (and its
	// plugins) rather than leaving them for a next server.
	cmd := exec.Command(ptyhost, "serve", "--config", config, "--listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--log-level", "warn", "--hang-up-on-stop")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ptyhost: serving on ")
		if !ok {
			t.Fatalf("first line %q, want \"ptyhost: serving on URL\"; stderr:\n%s", line, s.stderr)
		}
		s.url = addr
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not start; stderr:\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for the server to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("server exit: %v; stderr:\n%s", err, s.stderr)
			}
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("the server did not stop on SIGTERM; stderr:\n%s", s.stderr)
		}
	})
}

func (s *server) request(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v; stderr:\n%s", method, path, err, s.stderr)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// pluginStatus is what GET /api/v1/plugins says of a plugin.
type pluginStatus struct {
	Name   string   `json:"name"`
	State  string   `json:"state"`
	Reason string   `json:"reason"`
	SHA256 string   `json:"sha256"`
	Types  []string `json:"types"`
}

func (s *server) plugin(t *testing.T, name string) pluginStatus {
	t.Helper()
	code, body := s.request(t, "GET", "/api/v1/plugins", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/plugins: %d %s", code, body)
	}
	var list struct{ Plugins []pluginStatus }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /api/v1/plugins: %v: %s", err, body)
	}
	for _, p := range list.Plugins {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no plugin %q in %s", name, body)
	return pluginStatus{}
}

// wsTerm is a WebSocket attached to a session.
type wsTerm struct {
	c   *websocket.Conn
	out []byte
}

func (s *server) attach(t *testing.T, id string) *wsTerm {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/sessions/" + id + "/attach"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"ptyhost.v1"}})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsTerm{c: c}
}

func (w *wsTerm) send(t *testing.T, input string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageBinary, []byte(input)); err != nil {
		t.Fatalf("send %q: %v", input, err)
	}
}

// expect reads output frames until they contain want.
func (w *wsTerm) expect(t *testing.T, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !bytes.Contains(w.out, []byte(want)) {
		typ, b, err := w.c.Read(ctx)
		if err != nil {
			t.Fatalf("no %q in the output (%v); output: %q", want, err, w.out[max(0, len(w.out)-2048):])
		}
		if typ == websocket.MessageBinary {
			w.out = append(w.out, b...)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
