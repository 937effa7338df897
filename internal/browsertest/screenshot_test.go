package browsertest

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// Size of the README's screenshot, in CSS pixels at a device scale of 1.
const shotWidth, shotHeight = 1200, 760

// TestScreenshot takes a screenshot of the page attached to a session that
// shows something readable, checks it is a PNG of the window's size, and,
// with PTYHOST_UPDATE_SCREENSHOT=1, writes it to docs/images/page.png for
// the README.
func TestScreenshot(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", tickScript}}) // another row in the list
	// A small project to list: the screenshot shows nothing of the machine
	// that took it.
	dir := filepath.Join(t.TempDir(), "demo")
	for name, body := range map[string]string{"README.md": "# demo\n", "go.mod": "module demo\n", "main.go": "package main\n",
		"cmd/demo/main.go": "package main\n", "docs/guide.md": "# guide\n", "build.sh": "#!/bin/sh\n"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/bash", "--noprofile", "--norc"},
		"env": map[string]string{"PS1": `\[\e[1;32m\]you@ptyhost\[\e[0m\]:\[\e[1;34m\]\W\[\e[0m\]$ `, "TERM": "xterm-256color"}})
	p := newTab(t, "screenshot")
	p.viewport(shotWidth, shotHeight)
	p.colorScheme("dark")
	// The renderer the page picks itself: the screenshot shows the page
	// as users see it.
	p.navigate(pageURL(srv, "/s/"+id, false))
	p.waitAttached(id)
	p.typeLine("cd " + dir + " && clear")
	p.waitText("the prompt in the demo directory", func(s string) bool { return strings.HasPrefix(s, "you@ptyhost:demo$") })
	p.typeLine("ls -l --color=always --time-style=+ | tail -n +2")
	p.waitText("the listing", func(s string) bool { return strings.Contains(s, " main.go") && strings.Count(s, "you@ptyhost") >= 2 })
	p.typeLine(`printf '\e[1;33mhello\e[0m from \e[1;36m%s\e[0m\n' "$(uname -s)"`)
	p.waitText("the greeting", func(s string) bool { return strings.Contains(s, "hello from ") && strings.Count(s, "you@ptyhost") >= 3 })

	t.Logf("WebGL renderer: %v", p.webglRenderer())
	shot := call(p, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng})
	img, err := png.Decode(bytes.NewReader(shot.Data))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != shotWidth || b.Dy() != shotHeight {
		t.Errorf("the screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), shotWidth, shotHeight)
	}
	tmp := filepath.Join(t.TempDir(), "page.png")
	if err := os.WriteFile(tmp, shot.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("PTYHOST_UPDATE_SCREENSHOT") == "1" {
		out := filepath.Join(repoRoot(t), "docs", "images", "page.png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, shot.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
}
