package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// The server answers /healthz and the API while a plugin that never
// handshakes starts; its environment type answers 503 meanwhile; the
// default host environment is there as soon as the host plugin runs; and
// the server stops promptly, killing the starting plugin.
func TestServeAnswersWhilePluginsStart(t *testing.T) {
	clearServeEnv(t)
	dir, state := testbin.PluginDir(t, "host"), t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(state, "mute.pid")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s\nexec %s 600\n", pidFile, sleep)
	if err := os.WriteFile(filepath.Join(dir, "ptyhost-plugin-mute"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, `plugin "mute" {}`)

	// Before, the server logged this only after every plugin had started:
	// a minute for mute.
	deadline := time.Now().Add(10 * time.Second)
	s := e2etest.Start(t, e2etest.Options{Run: runServer, PluginDir: dir, LogLevel: "info", WaitLog: true,
		Args: []string{"--config", config}, StartTimeout: 10 * time.Second})
	if code, body := s.Request(t, "GET", "/healthz", nil); code != 200 {
		t.Errorf("GET /healthz: %d %v", code, body)
	}
	for {
		code, _ := s.Request(t, "GET", "/api/v1/environments/host", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no host environment within 10s: %d\n%s", code, s.Stderr())
		}
		time.Sleep(10 * time.Millisecond) // nothing to wait on but the API
	}
	if code, body := s.Request(t, "GET", "/api/v1/plugins", nil); code != 200 || !strings.Contains(fmt.Sprint(body), "name:mute") ||
		!strings.Contains(fmt.Sprint(body), "state:starting") {
		t.Errorf("GET /api/v1/plugins: %d %v, want mute starting", code, body)
	}
	code, body := s.Request(t, "POST", "/api/v1/environments", map[string]any{"id": "m", "type": "MUTE"})
	if code != 503 || !strings.Contains(fmt.Sprint(body["error"]), "still starting: mute") {
		t.Errorf("creating a MUTE environment: %d %v, want 503 saying mute is still starting", code, body)
	}

	b, _ := os.ReadFile(pidFile)
	mute, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := s.Stop(t, 15*time.Second); err != nil {
		t.Errorf("serve: %v", err)
	}
	if mute == 0 {
		t.Fatal("mute wrote no pid")
	}
	for alive(mute) {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("the starting plugin %d outlived the server", mute)
		}
		time.Sleep(10 * time.Millisecond) // /proc: nothing to wait on
	}
}

// A server killed with SIGKILL, and its plugin with it, leave the plugin's
// socket (and reattach record) in DATA_DIR/run; the next server removes
// them and starts a plugin afresh. No socket lands in the temporary
// directory.
func TestServeRemovesStaleSockets(t *testing.T) {
	testbin.Ptyhost(t)
	testbin.PluginDir(t, "host")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dataDir := t.TempDir()
	runDir := filepath.Join(dataDir, "run")
	sockets := func() []string {
		var out []string
		entries, _ := os.ReadDir(runDir)
		for _, e := range entries {
			if e.Type()&os.ModeSocket != 0 {
				out = append(out, e.Name())
			}
		}
		return out
	}

	server := startServerProcess(t, dataDir)
	first := sockets()
	if len(first) != 1 {
		t.Fatalf("sockets in %s: %q, want the host plugin's", runDir, first)
	}
	plugins := children(server.Pid(t))
	server.Kill(t)
	for _, pid := range plugins {
		syscall.Kill(pid, syscall.SIGKILL) // else it keeps its socket for the next server
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range plugins {
		// Gone, not only dead: the next server must not take a zombie
		// that init has yet to reap for a live plugin.
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("plugin %d outlived the server", pid)
			}
			time.Sleep(10 * time.Millisecond) // /proc: nothing to wait on
		}
	}
	if _, err := os.Lstat(filepath.Join(runDir, first[0])); err != nil {
		t.Logf("the killed server's plugin removed its socket itself: %v", err)
	}

	server.Restart(t)
	if now := sockets(); len(now) != 1 || now[0] == first[0] {
		t.Errorf("sockets after the restart: %q, want one, not the stale %s", now, first[0])
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		t.Errorf("the temporary directory holds %s", e.Name())
	}
}

// SIGTERM stops the server within --shutdown-timeout even when a plugin's
// helper holds its stderr, and the helper dies with the plugin.
func TestServeSigtermWithPluginHelper(t *testing.T) {
	clearServeEnv(t)
	fake := testbin.Path(t, "core/pluginhost/testdata/fakeplugin", "plugins/ptyhost-plugin-fake")
	dir, state := testbin.PluginDir(t, "host"), t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	helperFile := filepath.Join(state, "helper")
	script := fmt.Sprintf("#!/bin/sh\n%s 600 &\necho $! > %s\nexec %s \"$@\"\n", sleep, helperFile, fake)
	if err := os.WriteFile(filepath.Join(dir, "ptyhost-plugin-wrapped"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, `plugin "wrapped" {}`)
	s := e2etest.Start(t, e2etest.Options{PluginDir: dir, Args: []string{"--config", config, "--shutdown-timeout", "3s"}})
	b, err := os.ReadFile(helperFile)
	helper, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(helper) {
		t.Fatalf("the plugin's helper is not running: %q %v", b, err)
	}
	start := time.Now()
	s.Signal(t, syscall.SIGTERM)
	// The timeout, and room for a loaded machine.
	err = s.Wait(t, 3*time.Second+5*time.Second)
	t.Logf("stopped %v after SIGTERM: %v", time.Since(start), err)
	for alive(helper) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the plugin's helper %d outlived the server", helper)
		}
		time.Sleep(10 * time.Millisecond) // /proc: nothing to wait on
	}
}
