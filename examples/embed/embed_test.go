package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// TestEmbedExample builds and runs the example, then uses ptyhost through
// the application's own routes and authentication.
func TestEmbedExample(t *testing.T) {
	bin := testbin.Path(t, "examples/embed", "examples/embed")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dbPath := filepath.Join(t.TempDir(), "app.db")
	cmd := exec.Command(bin, "-listen", addr, "-plugin-dir", testbin.PluginDir(t, "host"), "-db", dbPath)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := bufio.NewScanner(stderr)
	for logs.Scan() && !strings.Contains(logs.Text(), "msg=serving") {
	}
	go io.Copy(io.Discard, stderr)

	base := "http://" + addr
	get := func(path string, auth bool) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth {
			req.SetBasicAuth("demo", "demo")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/", false); code != 200 || body != "my app\n" {
		t.Errorf("app route: %d %q", code, body)
	}
	if code, _ := get("/terminals/api/v1/sessions", false); code != 401 {
		t.Errorf("without the app's auth: %d", code)
	}
	if code, body := get("/terminals/api/v1/environments", true); code != 200 || !strings.Contains(body, `"HOST"`) {
		t.Errorf("environments: %d %s", code, body)
	}

	req, _ := http.NewRequest("POST", base+"/terminals/api/v1/sessions",
		strings.NewReader(`{"id":"e1","environment_id":"host","command":["/bin/sh","-c","read x; echo embedded-$x"]}`))
	req.SetBasicAuth("demo", "demo")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Authorization", req.Header.Get("Authorization"))
	c, err := wsproto.Dial(ctx, "ws://"+addr+"/terminals"+wsproto.AttachPath("e1"), wsproto.DialOptions{Header: hdr})
	if err != nil {
		t.Fatal(err)
	}
	term := e2etest.NewTerm(t, c)
	term.Send("ok\r")
	term.WaitOutput("embedded-ok")

	// One server per database: a second one is refused, and exits 1.
	second := exec.Command(bin, "-listen", "127.0.0.1:0", "-plugin-dir", testbin.PluginDir(t, "host"), "-db", dbPath)
	out, err := second.CombinedOutput()
	if code := second.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "owned by another") {
		t.Errorf("a second server on the database: exit %d (%v), output %q; want 1 and a claim refused", code, err, out)
	}

	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("the example did not stop on SIGINT")
	}
}
