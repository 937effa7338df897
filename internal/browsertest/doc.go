// Package browsertest drives the page that `ptyhost serve` embeds (package
// core/webui) in a real Chromium against a real server: it creates
// sessions from the page, types into the terminal, resizes the window,
// opens a second tab, restarts the server under an attached page, checks
// the exit banner, the token dialog, that another origin cannot attach, the
// page's accessibility basics, and takes the README's screenshot.
//
// The package has no code besides its tests. Its tests share one headless
// Chromium, started on first use and stopped by TestMain; each test opens
// its tabs in a browser context of its own (its own storage), against a
// server of its own from internal/e2etest, and closes them in its cleanup.
// Every tab collects the console errors, uncaught exceptions and error
// log entries the page causes, and the test fails on any it did not
// expect (a test that makes the page fail on purpose, such as a wrong
// token, names the entries it expects).
//
// Chromium is Debian's `chromium` (or `chromium-headless-shell`), found on
// PATH; `make test` installs it. Without it the tests skip, or fail under
// PTYHOST_INTEGRATION=1. The tests read the terminal through the page's
// test hook (window.ptyhost.text()), which reads xterm's buffer, so they
// pass whichever renderer the page picks; those that read the DOM load
// the page with ?renderer=dom. The page sets the hook only when loaded
// with ?testhook=1, which pageURL adds.
//
// PTYHOST_UPDATE_SCREENSHOT=1 makes TestScreenshot write
// docs/images/page.png as well as its temporary copy.
package browsertest
