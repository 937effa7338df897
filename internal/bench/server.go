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
}

// startServer starts bin/ptyhost serve with its data in dataDir and the
// plugins in bin/plugins, and waits until it serves. Its log goes to
// stderr.
func startServer(ctx context.Context, bin, dataDir string, stderr io.Writer) (*server, error) {
	cmd := exec.Command(filepath.Join(bin, "ptyhost"), "serve",
		"--listen", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--plugin-dir", filepath.Join(bin, "plugins"),
		"--scrollback", scrollback,
		"--log-level", "warn",
	)
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
	s := &server{cmd: cmd, http: &http.Client{Timeout: 30 * time.Second}, exited: make(chan struct{})}
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

// createSession starts argv in the host environment on an 80x24 terminal
// and returns the session's id.
func (s *server) createSession(ctx context.Context, argv []string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"environment_id": "host",
		"command":        argv,
		"worktree_path":  filepath.Dir(argv[0]),
		"cols":           80,
		"rows":           24,
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/v1/sessions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /api/v1/sessions: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var sess struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &sess); err != nil || sess.ID == "" {
		return "", fmt.Errorf("POST /api/v1/sessions: no session id in %s", b)
	}
	return sess.ID, nil
}

// deleteSession destroys a session; an ended one is fine too.
func (s *server) deleteSession(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.base+"/api/v1/sessions/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE /api/v1/sessions/%s: %s", id, resp.Status)
	}
	return nil
}
