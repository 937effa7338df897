package browsertest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// fileHolds waits until the file at path holds what match accepts, and
// returns its content.
func fileHolds(t *testing.T, path, what string, match func([]byte) bool) []byte {
	t.Helper()
	var b []byte
	eventually(t, what, func() bool {
		b, _ = os.ReadFile(path)
		return match(b)
	}, func() string { return fmt.Sprintf("%s holds %q", filepath.Base(path), b) })
	return b
}

// TestReplayQueriesUnanswered: a query the program sent before the page
// attached (device attributes, cursor position) is history in the replay:
// the page's terminal does not answer it, so no answer reaches the program
// as input, on the first page or on a second one. A query sent while the
// page is attached is answered.
func TestReplayQueriesUnanswered(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	dir := t.TempDir()
	ready, typed, live := filepath.Join(dir, "ready"), filepath.Join(dir, "typed"), filepath.Join(dir, "live")
	// The typed file gets the first 4 bytes of input: an answer to the
	// replayed queries would come before what the test types.
	script := fmt.Sprintf(`stty raw -echo; printf 'query:\033[c\033[6n\033[>c\r\n'; : > %s; head -c 4 > %s; printf 'asked:\033[c\r\n'; cat > %s`, ready, typed, live)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", script}})
	fileHolds(t, ready, "the program to have sent its queries", func(b []byte) bool { return b != nil })

	p := newTab(t, "replay-queries")
	p.attach(srv, id)
	p.waitLine("query:")
	p.typeLine("abc")
	if b := fileHolds(t, typed, "the typed line to reach the program", func(b []byte) bool { return len(b) >= 4 }); string(b) != "abc\r" {
		t.Fatalf("the program read %q first, want %q: the page answered the queries in the replay", b, "abc\r")
	}
	// Sent while the page is attached: answered.
	answer := fileHolds(t, live, "the page to answer a live query", func(b []byte) bool { return bytes.HasSuffix(b, []byte("c")) })
	if !bytes.HasPrefix(answer, []byte("\x1b[?")) {
		t.Fatalf("the program read %q after its live query, want a device attributes answer", answer)
	}

	// A second page replays both queries, and answers neither.
	p2 := p.sibling("replay-queries-2")
	p2.attach(srv, id)
	p2.waitLine("asked:")
	p2.typeLine("zz")
	got := fileHolds(t, live, "the second page's typing to reach the program", func(b []byte) bool { return bytes.HasSuffix(b, []byte("zz\r")) })
	if want := string(answer) + "zz\r"; string(got) != want {
		t.Errorf("the program read %q, want %q: the second page answered queries in the replay", got, want)
	}
}

// termModes is what the page's terminal is in that a program sets: the
// buffer, mouse reporting, application cursor keys, bracketed paste.
const termModes = `(() => { const t = window.ptyhost.term; return [t.buffer.active.type, t.modes.mouseTrackingMode,
	String(t.modes.applicationCursorKeysMode), String(t.modes.bracketedPasteMode)].join(" "); })()`

// freshModes is termModes of a fresh terminal.
const freshModes = "normal none false false"

// TestRestartInPlaceFreshModes: after a restart in place the new program
// gets a fresh terminal's modes, in the page attached across it and in a
// page that attaches later and replays the restart; the latter shows no
// notice of a restart that happened before it came.
func TestRestartInPlaceFreshModes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`printf '\033[?1049h\033[?1000h\033[?1h\033[?2004hOLD-PROGRAM'; exec sleep 600`}})
	p := newTab(t, "restart-modes")
	p.attach(srv, id)
	p.waitFor("the old program's modes", fmt.Sprintf(`%s === "alternate vt200 true true"`, termModes), termModes)

	if code, out := srv.Request(t, "POST", "/api/v1/sessions/"+id+"/restart",
		map[string]any{"command": []string{"/bin/sh", "-c", "printf NEW-PROGRAM; exec sleep 600"}}); code != 200 {
		t.Fatalf("restart: %d %v", code, out)
	}
	p.waitFor("the new program's output", `window.ptyhost.text().includes("NEW-PROGRAM")`, `window.ptyhost.text()`)
	if got := eval[string](p, termModes); got != freshModes {
		t.Errorf("the attached page's terminal after the restart: %s, want %s", got, freshModes)
	}

	later := p.sibling("restart-modes-later")
	later.attach(srv, id)
	later.waitFor("the new program's output", `window.ptyhost.text().includes("NEW-PROGRAM")`, `window.ptyhost.text()`)
	if got := eval[string](later, termModes); got != freshModes {
		t.Errorf("a page attached after the restart: %s, want %s", got, freshModes)
	}
	if msg := eval[string](later, `document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent`); strings.Contains(msg, "restarted") {
		t.Errorf("a page attached after the restart shows %q", msg)
	}
}

// TestLargePaste: a paste larger than the server takes in one message
// (1 MiB) reaches the program whole.
func TestLargePaste(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	got := filepath.Join(t.TempDir(), "got")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "stty raw -echo; exec cat > " + got}})
	p := newTab(t, "large-paste")
	p.attach(srv, id)
	const size = 1100000
	eval[bool](p, fmt.Sprintf(`(window.ptyhost.term.paste("0123456789".repeat(%d)), true)`, size/10))
	b := fileHolds(t, got, "the whole paste to reach the program", func(b []byte) bool { return len(b) >= size })
	if len(b) != size || !bytes.Equal(b, bytes.Repeat([]byte("0123456789"), size/10)) {
		t.Errorf("the program read %d bytes, want the %d pasted, in order", len(b), size)
	}
}

// TestWideWindow: a window wider than the protocol's 1000 columns gets a
// terminal of 1000 columns, and the session takes that size.
func TestWideWindow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := newTab(t, "wide")
	p.viewport(10000, 400)
	p.attach(srv, id)
	eventually(t, "the session to take the page's width, 1000 columns", func() bool {
		return number(srv.Session(t, id), "cols") == 1000
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	if cols := eval[int](p, `window.ptyhost.term.cols`); cols != 1000 {
		t.Errorf("the page's terminal has %d columns, want 1000", cols)
	}
}

// TestRestartInPlaceKeepsTheCursor: a restart of a program that used the
// main screen leaves the cursor where it was: the new program's output
// follows the old output, and does not overwrite the top of the screen.
func TestRestartInPlaceKeepsTheCursor(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`printf 'old line 1\r\nold line 2\r\n'; exec sleep 600`}})
	p := newTab(t, "restart-cursor")
	p.attach(srv, id)
	p.waitLine("old line 2")
	if code, out := srv.Request(t, "POST", "/api/v1/sessions/"+id+"/restart",
		map[string]any{"command": []string{"/bin/sh", "-c", "printf NEW-PROGRAM; exec sleep 600"}}); code != 200 {
		t.Fatalf("restart: %d %v", code, out)
	}
	text := p.waitText("the new program's output", func(s string) bool { return strings.Contains(s, "NEW-PROGRAM") })
	lines := strings.Split(text, "\n")
	if len(lines) < 3 || lines[0] != "old line 1" || lines[1] != "old line 2" || !strings.Contains(lines[2], "NEW-PROGRAM") {
		t.Errorf("after the restart the terminal shows %q, want the old lines, then the new program's output", lines[:min(len(lines), 4)])
	}
}

// TestHugeLineCountsDoNotFreeze: output asking to scroll, insert or
// delete 99,999,999 lines (twelve bytes; xterm.js runs each once per
// line) froze the tab for minutes, and again at each replay; the page
// caps the counts at its rows, also when a sequence is cut between two
// writes, live and in the replay.
func TestHugeLineCountsDoNotFreeze(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	goFile := filepath.Join(t.TempDir(), "go")
	script := fmt.Sprintf(`while [ ! -e %s ]; do sleep 0.05; done; printf 'before\r\n\033[9999'; sleep 0.3; `+
		`printf '9999S\033[99999999T\033[99999999L\033[99999999M'; printf 'after\r\n'; exec sleep 1000`, goFile)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", script}})
	p := newTab(t, "huge-counts")
	p.attach(srv, id)
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.waitLine("after")
	p2 := p.sibling("huge-counts-replay")
	p2.attach(srv, id)
	p2.waitLine("after")
}
