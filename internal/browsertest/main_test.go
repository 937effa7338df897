package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/leakcheck"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// browserStartTimeout bounds Chromium's start, a cold one on a loaded
// machine included.
const browserStartTimeout = 60 * time.Second

// browser is the Chromium the package's tests share: started by the first
// test that needs it, stopped by TestMain.
var browser struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab: its context owns the process
	stop   func()          // ends the process and removes its user data dir
	err    error
	output e2etest.Buffer // what Chromium wrote, for failures
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.stop != nil {
		browser.stop()
	}
	testbin.Cleanup() // the binaries the tests built, if any
	if code == 0 {
		if leaks := leakcheck.Wait(5 * time.Second); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) leaked:\n\n%s\n", len(leaks), strings.Join(leaks, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// chromiumPath returns Chromium's path. Without one, it skips the test,
// or fails it under PTYHOST_INTEGRATION=1 (make test), saying how to get
// one.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on PATH (chromium or chromium-headless-shell): install Debian's chromium: apt-get install chromium (make test does)"
	if os.Getenv("PTYHOST_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browserFlags are Chromium's flags besides headless. Running as root (as
// CI and the development machines do) needs --no-sandbox. The GPU is off,
// as on CI's machines; Chromium still offers WebGL2 in software, so the
// page's default (WebGL) renderer runs where a test does not ask for the
// DOM one. The rest keep Chromium from calling home
// or doing work of its own while a test measures the page.
func browserFlags(userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		// A tab in a window that is not in front must still render and
		// run its timers: the second-tab test reads both.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1200, 760),
		chromedp.CombinedOutput(&browser.output),
	}
}

// sharedBrowser returns the context of the shared Chromium, starting it
// on first use; tabs are new chromedp contexts under it.
func sharedBrowser(t testing.TB) context.Context {
	t.Helper()
	path := chromiumPath(t)
	browser.once.Do(func() { browser.err = startBrowser(path) })
	if browser.err != nil {
		t.Fatalf("starting Chromium (%s): %v\n%s", path, browser.err, e2etest.Tail([]byte(browser.output.String()), 2000))
	}
	return browser.ctx
}

// startBrowser starts Chromium at path and waits for its first tab.
func startBrowser(path string) error {
	dir, err := os.MkdirTemp("", "ptyhost-browsertest-")
	if err != nil {
		return err
	}
	opts := append(browserFlags(dir), chromedp.ExecPath(path))
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	browser.ctx = ctx
	browser.stop = func() {
		// Closing the first tab's context ends the browser process and
		// waits for it; the allocator's cancel waits for its cleanup.
		_ = chromedp.Cancel(ctx)
		cancel()
		allocCancel()
		_ = os.RemoveAll(dir)
	}
	// The first Run starts the process and must have the browser's own
	// context, not one with a deadline: so bound it from outside.
	done := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("1"))
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(browserStartTimeout):
		err = fmt.Errorf("chromium did not start within %v", browserStartTimeout)
	}
	if err != nil {
		browser.stop()
		browser.stop = nil
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("chromium exited: %w", err)
		}
		return err
	}
	return nil
}
