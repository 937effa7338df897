package browsertest

import (
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// noHorizontalScroll is true when the page is no wider than its window.
const noHorizontalScroll = `document.documentElement.scrollWidth <= window.innerWidth`

// TestNarrowWindow: at 320 px wide the page does not scroll sideways, the
// create form fits and works, and the keyboard focus lands in the
// terminal once attached.
func TestNarrowWindow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	shellSession(t, srv) // a row in the list, at that width too
	p := newTab(t, "narrow")
	p.viewport(320, 640)
	p.navigate(pageURL(srv, "/", true))
	p.waitReady()
	p.waitFor("the list to show the session", `document.querySelector("#sessions tr[data-session-id]")`, "")

	if w := eval[int](p, "document.documentElement.scrollWidth"); w > 320 {
		t.Errorf("the list page is %d px wide in a 320 px window: it scrolls sideways", w)
	}
	for _, sel := range []string{"#create-env", "#create-command", "#create-cwd", "#create-submit"} {
		box := eval[map[string]float64](p, `(() => { const r = document.querySelector("`+sel+`").getBoundingClientRect();
			return {left: r.left, right: r.right, width: r.width, height: r.height}; })()`)
		if box["width"] <= 0 || box["height"] <= 0 || box["left"] < 0 || box["right"] > 320 {
			t.Errorf("%s is at %v in a 320 px window, want it whole and visible", sel, box)
		}
	}

	createFromPage(t, srv, p, "/bin/sh")
	p.waitFor("the keyboard focus in the terminal", `document.querySelector("#terminal").contains(document.activeElement)`,
		`document.activeElement && document.activeElement.outerHTML.slice(0, 200)`)
	if !eval[bool](p, noHorizontalScroll) {
		t.Errorf("the terminal view is %d px wide in a 320 px window", eval[int](p, "document.documentElement.scrollWidth"))
	}
	p.typeLine("echo narrow-$((1+1))")
	p.waitLine("narrow-2")
}

// TestColorScheme: the page follows the system's light or dark setting.
func TestColorScheme(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := newTab(t, "scheme")
	p.attach(srv, id)

	const colors = `[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]`
	p.colorScheme("light")
	p.waitFor("the light scheme to apply", `matchMedia("(prefers-color-scheme: light)").matches`, "")
	light := eval[[]string](p, colors)
	p.colorScheme("dark")
	p.waitFor("the dark scheme to apply", `matchMedia("(prefers-color-scheme: dark)").matches`, "")
	dark := eval[[]string](p, colors)
	if light[0] == dark[0] {
		t.Errorf("the body's background is %s in both the light and the dark scheme", light[0])
	}
	if light[1] == dark[1] {
		t.Errorf("the body's text colour is %s in both the light and the dark scheme", light[1])
	}
	t.Logf("light %v, dark %v", light, dark)
}
