package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// startTimeout bounds the server's start, plugins included.
	startTimeout = time.Minute
	// stopTimeout is how long the server may take to stop after SIGTERM
	// before it is killed; its own --shutdown-timeout is 10s.
	stopTimeout = 20 * time.Second
	// servingPrefix starts the line serve prints once it accepts requests.
	servingPrefix = "ptyhost: serving on http://"
)

// server is a `ptyhost serve` process on a free loopback port.
type server struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	http   *http.Client
	exited chan struct{} // closed when the process has exited; waitErr is set
	// waitErr is cmd.Wait's result.
	waitErr error
	// via, when set, is the node of the same cluster that clients attach
	// through (see cluster.go); sessions are still created on s.
	via *server
}

// startServer starts bin/ptyhost serve with its data in dataDir and the
// plugins in bin/plugins, and waits until it serves. scrollback is its
// --scrollback; "" leaves the server's default; extra are more flags. Its
// log goes to stderr.
func startServer(ctx context.Context, bin, dataDir, scrollback string, stderr io.Writer, extra ...string) (*server, error) {
	args := []string{"serve",
		"--listen", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--plugin-dir", filepath.Join(bin, "plugins"),
		"--log-level", "warn",
		// The bench's sessions end with it, plugins included.
		"--hang-up-on-stop",
	}
	if scrollback != "" {
		args = append(args, "--scrollback", scrollback)
	}
	args = append(args, extra...) // a later flag wins
	cmd := exec.Command(filepath.Join(bin, "ptyhost"), args...)
	// Only the flags configure it: drop the caller's PTYHOST_* settings.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PTYHOST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stderr = stderr
	cmd.SysProcAttr = serverProcAttr()
	// A pipe of our own rather than StdoutPipe, which Wait would close
	// under the reader.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("starting ptyhost serve: %w", err)
	}
	// Enough idle connections for the bounded-concurrency creates and
	// deletes of the idle-sessions run, so that each request reuses one
	// instead of opening (and leaving in TIME_WAIT) a new one.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * scaleConcurrency
	s := &server{cmd: cmd, http: &http.Client{Timeout: 30 * time.Second, Transport: tr}, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	addr := make(chan string, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), servingPrefix); ok {
				addr <- rest
				break
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case a := <-addr:
		s.base = "http://" + a
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("ptyhost serve exited before serving: %v", s.waitErr)
	case <-t.C:
		err = fmt.Errorf("ptyhost serve did not print %q within %v", servingPrefix+"ADDR", startTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := s.stop(); serr != nil {
		err = errors.Join(err, serr)
	}
	return nil, err
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits for the server to exit, killing it after
// stopTimeout. It reports a server that failed or had to be killed.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.exitError()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.exited:
		return s.exitError()
	case <-t.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("ptyhost serve did not stop within %v of SIGTERM; killed", stopTimeout)
	}
}

func (s *server) exitError() error {
	if s.waitErr != nil {
		return fmt.Errorf("ptyhost serve: %w", s.waitErr)
	}
	return nil
}

// place is where a session of the bench runs the generator: an
// environment of the server, the generator's path as a session there sees
// it, and the sessions' worktree_path.
type place struct {
	env      string // the environment's id
	gen      string // the generator's path in the environment
	worktree string // "" for the environment's default
}

// argv is the command line that runs the generator with args in p.
func (p place) argv(args ...string) []string { return append([]string{p.gen}, args...) }

// createEnvironment creates an environment of type typ with config.
func (s *server) createEnvironment(ctx context.Context, id, typ string, config any) error {
	_, err := s.do(ctx, http.MethodPost, "/api/v1/environments",
		map[string]any{"id": id, "type": typ, "config": config}, http.StatusCreated)
	return err
}

// createSession starts argv in environment p.env on an 80x24 terminal and
// returns the session's id.
func (s *server) createSession(ctx context.Context, p place, argv []string) (string, error) {
	b, err := s.do(ctx, http.MethodPost, "/api/v1/sessions", map[string]any{
		"environment_id": p.env,
		"command":        argv,
		"worktree_path":  p.worktree,
		"cols":           80,
		"rows":           24,
	}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var sess struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &sess); err != nil || sess.ID == "" {
		return "", fmt.Errorf("POST /api/v1/sessions: no session id in %s", b)
	}
	return sess.ID, nil
}

// deleteSession destroys a session (the server answers once it has
// ended); an ended one is fine too.
func (s *server) deleteSession(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.do(ctx, http.MethodDelete, "/api/v1/sessions/"+id, nil, http.StatusNoContent)
	return err
}

// do sends a request with body as JSON (none when nil) and returns the
// response's body, or an error when the status is not want.
func (s *server) do(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
