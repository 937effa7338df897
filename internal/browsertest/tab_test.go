package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Bounds of a tab's waits.
const (
	// actionTimeout bounds one command to the browser.
	actionTimeout = 30 * time.Second
	// waitTimeout bounds a wait for the page to do something: attach,
	// render output, show a dialog.
	waitTimeout = 20 * time.Second
	// pollEvery is the step of those waits.
	pollEvery = 50 * time.Millisecond
)

// tab is one browser tab. Its methods fail the test on an error and are
// for the test's goroutine; the browser's events reach it on another.
type tab struct {
	t    testing.TB
	name string
	ctx  context.Context

	// mu protects the following.
	mu        sync.Mutex
	problems  []string         // console errors, exceptions and error log entries
	expected  []*regexp.Regexp // problems that are not failures
	listeners []func(ev any)   // a test's own, called with every event (listen)
}

// listen calls fn with every event of the tab from now on (the protocol's
// page, runtime, log and network events), on chromedp's goroutine.
func (p *tab) listen(fn func(ev any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listeners = append(p.listeners, fn)
}

// newTab opens a tab in a browser context of its own (its own cookies and
// storage) of the shared browser. The test's cleanup closes it and fails
// the test on any console error, exception or error log entry the page
// caused that the test did not expect.
func newTab(t testing.TB, name string) *tab {
	t.Helper()
	return openTab(t, name, sharedBrowser(t), chromedp.WithNewBrowserContext())
}

// sibling opens another tab in p's browser context, as a user opening a
// second tab of the same browser does.
func (p *tab) sibling(name string) *tab {
	p.t.Helper()
	return openTab(p.t, name, p.ctx)
}

func openTab(t testing.TB, name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	p := &tab{t: t, name: name}
	ctx, cancel := chromedp.NewContext(parent, append(opts, chromedp.WithListener(p.onEvent))...)
	p.ctx = ctx
	t.Cleanup(func() {
		// Close the tab (and its browser context, if it owns one) and wait
		// until it is gone.
		_ = chromedp.Cancel(ctx)
		cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, msg := range p.problems {
			t.Errorf("%s tab: %s", p.name, msg)
		}
	})
	// The tab's first Run opens it and lives as long as the context it
	// gets, so it cannot have a deadline of its own: bound it from outside.
	done := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("1"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("opening the %s tab: %v", name, err)
		}
	case <-time.After(actionTimeout):
		cancel()
		t.Fatalf("opening the %s tab: not within %v", name, actionTimeout)
	}
	return p
}

// expect makes problems matching any of the patterns (regular expressions
// matched against "console.error: …", "exception: …" or "log network
// error: …") expected: the test causes them on purpose.
func (p *tab) expect(patterns ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range patterns {
		p.expected = append(p.expected, regexp.MustCompile(s))
	}
}

// onEvent records the page's errors. It runs on the tab's reading
// goroutine and must not call the browser.
func (p *tab) onEvent(ev any) {
	p.mu.Lock()
	listeners := p.listeners
	p.mu.Unlock()
	for _, fn := range listeners {
		fn(ev)
	}
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, remoteString(a))
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + remoteString(d.Exception)
		}
		msg = fmt.Sprintf("exception: %s at %s:%d:%d", text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("log %s error: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, re := range p.expected {
		if re.MatchString(msg) {
			return
		}
	}
	p.problems = append(p.problems, msg)
}

// remoteString is a console argument or exception as text.
func remoteString(o *runtime.RemoteObject) string {
	if o.Description != "" {
		return o.Description
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	return string(o.Type)
}

// do runs actions in order and fails the test on an error.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s tab: %s: %v", p.name, what, err)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting it if it
// is a promise) and decodes its value into T; it fails the test on an
// exception.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := tryEval[T](p, expr)
	if err != nil {
		p.t.Fatalf("%s tab: evaluating %s: %v", p.name, expr, err)
	}
	return v
}

func tryEval[T any](p *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// call sends one protocol command to the tab.
func call[P, R any](p *tab, c cdp.Command[P, R], params P) R {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	r, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (R, error) {
		return cdp.Call(ctx, t, c, params)
	})
	if err != nil {
		p.t.Fatalf("%s tab: %s: %v", p.name, c.Method, err)
	}
	return r
}

// navigate loads url in the tab.
func (p *tab) navigate(url string) {
	p.t.Helper()
	p.do("navigate to "+url, chromedp.Navigate(url))
}

// waitFor polls the JavaScript expression cond until it is true, and fails
// the test if it is not within waitTimeout, showing what the expression
// detail gave last (if not empty). An exception in cond counts as false:
// the page may not have made what it reads yet.
func (p *tab) waitFor(what, cond, detail string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var lastErr error
	for {
		ok, err := tryEval[bool](p, "!!("+cond+")")
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	msg := fmt.Sprintf("%s tab: %s: not within %v", p.name, what, waitTimeout)
	if lastErr != nil {
		msg += fmt.Sprintf(" (last: %v)", lastErr)
	}
	if detail != "" {
		if d, err := tryEval[any](p, detail); err == nil {
			msg += fmt.Sprintf("; %s = %v", detail, d)
		}
	}
	if s, err := tryEval[string](p, termText); err == nil {
		msg += "\nterminal:\n" + s
	}
	p.t.Fatal(msg)
}

// termText reads the terminal's buffer through the page's test hook.
const termText = `window.ptyhost && window.ptyhost.text ? window.ptyhost.text() : ""`

// text returns the terminal's buffer as the page's test hook gives it.
func (p *tab) text() string {
	p.t.Helper()
	return eval[string](p, termText)
}

// waitText polls the terminal's text until match holds and returns it.
func (p *tab) waitText(what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := p.text()
		if match(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s tab: %s: not within %v; terminal:\n%s", p.name, what, waitTimeout, s)
		}
		time.Sleep(pollEvery)
	}
}

// waitLine waits for a line of the terminal that is exactly line.
func (p *tab) waitLine(line string) {
	p.t.Helper()
	p.waitText(fmt.Sprintf("a line %q in the terminal", line), func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimSpace(l) == line {
				return true
			}
		}
		return false
	})
}

// typeLine types s and Enter into the terminal as a user does: the text
// as one insertion (CDP's synthetic key events for characters reach
// xterm.js twice each), then a real Enter key.
func (p *tab) typeLine(s string) {
	p.t.Helper()
	// Keys go to the focused element: the terminal's hidden textarea.
	eval[chromedp.Void](p, `window.ptyhost.term.focus()`)
	if s != "" {
		call(p, input.InsertText, input.InsertTextParams{Text: s})
	}
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		params := input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		if typ == input.DispatchKeyEventTypeKeyDown {
			params.Text = "\r"
			params.UnmodifiedText = "\r"
		}
		call(p, input.DispatchKeyEvent, params)
	}
}

// viewport makes the page's window w×h CSS pixels (at a device scale of
// 1), as resizing the browser window does: the page sees a resize event.
func (p *tab) viewport(w, h int64) {
	p.t.Helper()
	call(p, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: w, Height: h, DeviceScaleFactor: 1})
}

// colorScheme emulates the system's colour scheme: "light" or "dark".
func (p *tab) colorScheme(scheme string) {
	p.t.Helper()
	call(p, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// takeProblems returns the problems recorded so far and forgets them.
func (p *tab) takeProblems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}
