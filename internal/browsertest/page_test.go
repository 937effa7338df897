package browsertest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestPageLoads: the page loads without a console error and lists the
// server's sessions and its environments, the host one in the picker.
func TestPageLoads(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := openPage(t, srv, "list", "/")

	opts := eval[[]string](p, `Array.from(document.querySelectorAll("select#create-env option")).map(o => o.value)`)
	if !slices.Contains(opts, "host") {
		t.Errorf("the environment picker offers %q, want the host environment among them", opts)
	}
	row := fmt.Sprintf(`document.querySelector('#sessions tr[data-session-id=%s]')`, jsString(id))
	p.waitFor("the session's row in the list", row, `document.querySelector("#sessions") && document.querySelector("#sessions").innerText`)
	cells := eval[map[string]string](p, fmt.Sprintf(`(() => { const r = %s; const o = {};
		for (const c of ["env", "command", "status", "clients", "size", "age"]) { const e = r.querySelector("." + c); o[c] = e ? e.textContent.trim() : null; }
		return o; })()`, row))
	if cells["env"] != "host" || !strings.Contains(cells["command"], "/bin/sh") || cells["size"] == "" || cells["status"] == "" {
		t.Errorf("the session's row is %v, want env host, command /bin/sh, a status and a size", cells)
	}
	for _, b := range []string{"attach", "watch", "restart", "destroy"} {
		if !eval[bool](p, row+`.querySelector("button.`+b+`") !== null`) {
			t.Errorf("the session's row has no %s button", b)
		}
	}
}

// createFromPage fills the create form with command and submits it, and
// returns the new session's id, once the page shows it attached. The
// test's cleanup destroys the session.
func createFromPage(t testing.TB, srv *e2etest.Server, p *tab, command string) string {
	t.Helper()
	p.do("fill the create form",
		chromedp.WaitVisible(chromedp.CSS("#create-command")),
		chromedp.SetValue(chromedp.CSS("#create-command"), command),
		chromedp.Click(chromedp.CSS("#create-submit")),
	)
	p.waitFor("the page to route to the new session", `/^#\/s\/[^?\/]+/.test(location.hash)`,
		`[location.hash, (document.querySelector("#create-error") || {}).textContent]`)
	id := routeID(eval[string](p, "location.hash"))
	t.Cleanup(func() { _, _, _ = srv.Do("DELETE", "/api/v1/sessions/"+id, nil) })
	p.waitAttached(id)
	return id
}

// TestCreateFromPage: the create form makes a session the server lists
// and attaches the page to it.
func TestCreateFromPage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	p := openPage(t, srv, "create", "/")
	id := createFromPage(t, srv, p, "/bin/sh")

	if ids := sessionIDs(t, srv); !slices.Contains(ids, id) {
		t.Fatalf("GET /api/v1/sessions lists %v, want the page's new session %s", ids, id)
	}
	rec := srv.Session(t, id)
	if cmd := fmt.Sprint(rec["command"]); cmd != "[/bin/sh]" {
		t.Errorf("the session's command is %s, want [/bin/sh]", cmd)
	}
	if rec["environment_id"] != "host" {
		t.Errorf("the session's environment is %v, want host", rec["environment_id"])
	}
	eventually(t, "the page's client counted by the server", func() bool {
		return number(srv.Session(t, id), "active_connections") == 1
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	if title := eval[string](p, `(document.querySelector("#term-title") || {}).textContent || ""`); !strings.Contains(title, id) {
		t.Errorf("#term-title is %q, want the session id %s in it", title, id)
	}
}

// TestTyping: what is typed in the page reaches the program, and its
// output renders in the terminal, with either renderer.
func TestTyping(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	for _, tt := range []struct {
		name string
		dom  bool
	}{
		{"dom renderer", true},
		{"default renderer", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := shellSession(t, srv)
			p := newTab(t, "typing")
			p.navigate(pageURL(srv, "/s/"+id, tt.dom))
			p.waitAttached(id)
			// By default the page draws with WebGL where the browser has
			// WebGL2 (Chromium gives it in software even without a GPU,
			// for now) and falls back to the DOM renderer elsewhere.
			want := !tt.dom && eval[bool](p, `!!document.createElement("canvas").getContext("webgl2")`)
			if got := p.webglRenderer(); got != want {
				t.Errorf("WebGL renderer in use: %v, want %v", got, want)
			}

			p.typeLine("echo $((6*7))")
			p.waitLine("42")
			// The echo of the command line shows it was typed once: each
			// character reached the shell once.
			if text := p.text(); !typedOnce.MatchString(text) {
				t.Errorf("the terminal does not show the command as typed:\n%s", text)
			}
		})
	}
}

// typedOnce matches the shell's prompt line with the command typed once.
var typedOnce = regexp.MustCompile(`(?m)^\S*[#$] echo \$\(\(6\*7\)\)$`)

// webglRenderer reports whether the terminal draws with xterm's WebGL
// renderer (a canvas of its own) rather than the DOM renderer.
func (p *tab) webglRenderer() bool {
	p.t.Helper()
	return eval[bool](p, `document.querySelector("#terminal .xterm-screen canvas") !== null && document.querySelector("#terminal .xterm-rows") === null`)
}

// TestResize: resizing the window resizes the terminal, and the PTY
// follows: the program sees the terminal's size.
func TestResize(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := newTab(t, "resize")
	p.viewport(1100, 700)
	p.attach(srv, id)

	var sizes []string
	for i, vp := range [][2]int64{{1100, 700}, {640, 420}} {
		if i > 0 {
			p.viewport(vp[0], vp[1])
			p.waitFor("the terminal to fit the smaller window",
				fmt.Sprintf(`window.ptyhost.term.cols + " " + window.ptyhost.term.rows !== %s`, jsString(sizes[0])),
				`[window.ptyhost.term.cols, window.ptyhost.term.rows]`)
		}
		cols, rows := eval[int](p, "window.ptyhost.term.cols"), eval[int](p, "window.ptyhost.term.rows")
		// The server has the terminal's size before the program is asked.
		eventually(t, fmt.Sprintf("the session's size to become the terminal's %dx%d", cols, rows), func() bool {
			rec := srv.Session(t, id)
			return number(rec, "cols") == cols && number(rec, "rows") == rows
		}, func() string { return fmt.Sprint(srv.Session(t, id)) })
		want := fmt.Sprintf("%d %d", rows, cols)
		marker := "size" + strconv.Itoa(i)
		p.typeLine("echo " + marker + " $(stty size)")
		p.waitLine(marker + " " + want)
		sizes = append(sizes, fmt.Sprintf("%d %d", cols, rows))
	}
	if sizes[0] == sizes[1] {
		t.Errorf("the terminal is %s in both windows, want it to follow the window", sizes[0])
	}
}

// TestSecondTab: a second tab of the same browser attached to the session
// sees the same output, and its input reaches the session too.
func TestSecondTab(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	first := newTab(t, "first")
	first.attach(srv, id)
	first.typeLine("echo one-$((2+3))")
	first.waitLine("one-5")

	second := first.sibling("second")
	second.attach(srv, id)
	second.waitLine("one-5") // the output so far, replayed
	eventually(t, "two clients counted by the server", func() bool {
		return number(srv.Session(t, id), "active_connections") == 2
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })

	second.typeLine("echo two-$((3*5))")
	second.waitLine("two-15")
	first.waitLine("two-15")
}

// TestExitShown: a program's exit is shown with its code.
func TestExitShown(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := newTab(t, "exit")
	p.attach(srv, id)
	if eval[bool](p, `(() => { const b = document.querySelector("#exit-banner"); return !!b && b.checkVisibility(); })()`) {
		t.Error("#exit-banner is visible before the program exits")
	}

	p.typeLine("exit 3")
	p.waitFor("the exit banner", `(() => { const b = document.querySelector("#exit-banner"); return b && b.checkVisibility() && /exited with code 3\b/.test(b.textContent); })()`,
		`[(document.querySelector("#exit-banner") || {}).textContent, (document.querySelector("#conn-state") || {dataset: {}}).dataset.state]`)
	eventually(t, "the server to record the exit", func() bool {
		return number(srv.Session(t, id), "exit_code") == 3
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	if st := p.connState(); st != "closed" {
		t.Errorf("#conn-state is %q after the exit, want closed", st)
	}
}

// TestListOrderRestartDestroy: running sessions come before ended ones,
// and the row's restart and destroy buttons do what they say (destroy
// after the user confirms).
func TestListOrderRestartDestroy(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	done := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "exit 0"}})
	eventually(t, "the first session to end", func() bool {
		return srv.Session(t, done)["status"] == "TERMINATED"
	}, func() string { return fmt.Sprint(srv.Session(t, done)) })
	live := shellSession(t, srv)
	p := openPage(t, srv, "list", "/")

	order := `Array.from(document.querySelectorAll("#sessions tbody tr")).map(r => r.dataset.sessionId)`
	p.waitFor("both rows, the running session first", fmt.Sprintf(`JSON.stringify(%s) === %s`, order, jsString(fmt.Sprintf("[%q,%q]", live, done))), order)

	row := fmt.Sprintf(`document.querySelector('#sessions tr[data-session-id=%s]')`, jsString(live))
	eval[bool](p, row+`.querySelector("button.restart").click() || true`)
	eventually(t, "the restart", func() bool {
		return number(srv.Session(t, live), "restarts") == 1
	}, func() string { return fmt.Sprint(srv.Session(t, live)) })

	// The page asks before it destroys: the answer here is the user's yes.
	eval[bool](p, `(window.confirm = (msg) => { window.__asked = msg; return true; }, true)`)
	eval[bool](p, row+`.querySelector("button.destroy").click() || true`)
	eventually(t, "the destroy", func() bool {
		return srv.Session(t, live)["status"] == "TERMINATED"
	}, func() string { return fmt.Sprint(srv.Session(t, live)) })
	if asked := eval[string](p, `window.__asked || ""`); !strings.Contains(asked, live) {
		t.Errorf("the page destroyed without asking about %s (asked %q)", live, asked)
	}
	p.waitFor("the row to show the session ended", row+`.querySelector(".status").textContent.trim() === "TERMINATED"`, row+`.querySelector(".status").textContent`)
}
