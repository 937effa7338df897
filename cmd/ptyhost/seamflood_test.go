package main

// The seam between a server that goes away and the next one, with
// the byte channel and direct input.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// seamLines is the output of seamFlood(n), as a terminal gives it.
func seamLines(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d é€😀\r\n", i)
	}
	return b.Bytes()
}

// seamFlood prints n numbered lines with multibyte characters as fast as
// it can (awk writes 4 KiB blocks: characters are split across reads),
// then exits with code 7.
func seamFlood(n int) []string {
	return []string{"/bin/sh", "-c", `sleep 0.3; awk 'BEGIN{for(i=1;i<=` + strconv.Itoa(n) + `;i++) printf "%d é€😀\n", i}'; exit 7`}
}

// seamReader follows a session's output across attachments and checks
// every output byte against want at its absolute offset.
type seamReader struct {
	t      *testing.T
	want   []byte
	off    int64 // next expected offset
	resets []string
	exit   *wsproto.Exit
	seen   map[*wsproto.Conn]bool
}

// follow reads c until it ends or until stop holds; it returns the error
// that ended it.
func (r *seamReader) follow(c *wsproto.Conn, stop func() bool) error {
	r.t.Helper()
	if r.seen == nil {
		r.seen = map[*wsproto.Conn]bool{}
	}
	if !r.seen[c] {
		r.seen[c] = true
		r.hello(c)
	}
	return r.read(c, stop)
}

func (r *seamReader) hello(c *wsproto.Conn) {
	h := c.Hello()
	r.t.Logf("hello %+v (resuming at %d)", h, r.off)
	if h.Offset != r.off {
		r.resets = append(r.resets, fmt.Sprintf("hello offset %d, resumed at %d", h.Offset, r.off))
		r.off = h.Offset
	}
}

func (r *seamReader) read(c *wsproto.Conn, stop func() bool) error {
	for stop == nil || !stop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		f, err := c.Next(ctx)
		cancel()
		if err != nil {
			return err
		}
		if f.Kind == wsproto.FrameOutput {
			end := r.off + int64(len(f.Data))
			if end > int64(len(r.want)) || !bytes.Equal(f.Data, r.want[r.off:end]) {
				lo := max(0, r.off-40)
				r.t.Fatalf("bytes at offset %d..%d: got %q, want %q (before: %q)", r.off, end,
					e2etest.Tail(f.Data, 80), e2etest.Tail(r.want[r.off:min(end, int64(len(r.want)))], 80), r.want[lo:r.off])
			}
			r.off = end
			continue
		}
		r.t.Logf("control %s", f.Data)
		switch f.Msg.Type {
		case wsproto.TypeReset:
			r.resets = append(r.resets, string(f.Data))
			r.off = f.Msg.Offset
			if r.off < int64(len(r.want)) && !utf8.RuneStart(r.want[r.off]) {
				r.t.Errorf("replay at %d starts inside a character", r.off)
			}
		case wsproto.TypeExit:
			e := f.Msg.Exit()
			r.exit = &e
		}
	}
	return nil
}

// checkEnd fails the test unless r read every byte it wants, with no
// reset, and then the exit with code; err is what ended the reading.
func (r *seamReader) checkEnd(err error, code int) {
	r.t.Helper()
	if r.off != int64(len(r.want)) {
		r.t.Errorf("ended at offset %d, want %d (%v)", r.off, len(r.want), err)
	}
	if len(r.resets) > 0 {
		r.t.Errorf("resets: %v", r.resets)
	}
	if r.exit == nil || r.exit.Code != code {
		r.t.Errorf("exit %+v, want code %d", r.exit, code)
	}
}

// TestFloodKillExitWhileNoServer: a session floods multibyte output
// and exits (code 7) while no server runs; the server was SIGKILLed in the
// flood. The next server's client, resuming at the offset it had, gets
// every byte exactly once (the output fits the scrollback), then the exit.
func TestFloodKillExitWhileNoServer(t *testing.T) {
	const n = 8000 // ~150 KB: fits 256 KiB
	want := seamLines(n)
	srv := startKeeping(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": seamFlood(n)})
	tm := srv.Attach(t, id)
	r := &seamReader{t: t, want: want}
	_ = r.follow(tm.Conn, func() bool { return r.off > 20000 })
	srv.Kill(t)
	// Drain what the old server sent before it died.
	_ = r.follow(tm.Conn, nil)
	time.Sleep(2 * time.Second) // the program ends with no server
	srv = srv.Restart(t)
	c, err := wsproto.Dial(context.Background(), srv.AttachURL(id), wsproto.DialOptions{ReadLimit: -1, Offset: &r.off})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.checkEnd(r.follow(c, nil), 7)
}

// TestFloodKillRepeated: SIGKILL and SIGTERM, several times, at
// random points of a flood that fits the scrollback; every byte once.
func TestFloodKillRepeated(t *testing.T) {
	const n = 10000
	want := seamLines(n)
	srv := startKeeping(t, e2etest.Options{Args: []string{"--scrollback", "1MiB"}})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`sleep 0.3; awk 'BEGIN{for(i=1;i<=` + strconv.Itoa(n) + `;i++) {printf "%d é€😀\n", i; if (i%500==0) system("sleep 0.2")}}'; exit 7`}})
	r := &seamReader{t: t, want: want}
	tm := srv.Attach(t, id)
	c := tm.Conn
	for round := 0; round < 6 && r.exit == nil; round++ {
		target := r.off + 15000
		if err := r.follow(c, func() bool { return r.off >= target || r.exit != nil }); err != nil {
			break
		}
		if r.exit != nil {
			break
		}
		if st := srv.Session(t, id)["status"]; st != "ACTIVE" && st != "IDLE" {
			break // exited: a restart now loses it (TestLingerAcrossRestart)
		}
		if round%2 == 0 {
			srv.Kill(t)
		} else {
			srv.Signal(t, syscall.SIGTERM)
			_ = srv.Wait(t, 20*time.Second)
		}
		_ = r.follow(c, nil)
		c.Close()
		srv = srv.Restart(t)
		if r.exit != nil {
			break
		}
		var err error
		c, err = wsproto.Dial(context.Background(), srv.AttachURL(id), wsproto.DialOptions{ReadLimit: -1, Offset: &r.off})
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if r.exit == nil {
		err = r.follow(c, func() bool { return r.exit != nil })
	}
	r.checkEnd(err, 7)
	if !utf8.Valid(want) {
		t.Fatal("bad want")
	}
}

// seamPluginStats counts the plugin process's descriptors, threads and
// children, and the byte-channel directories under tmp.
func seamPluginStats(t *testing.T, pid int, tmp string) (fds, threads, kids, dirs int) {
	t.Helper()
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	d, _ := filepath.Glob(filepath.Join(tmp, "ptyhost-channel-*"))
	return len(ents), len(tasks), len(children(pid)), len(d)
}

// TestRestartsLeakNothing: ten restarts (SIGKILL and SIGTERM by
// turns, during output and right after keystrokes and resizes) of a
// server with four live sessions: the plugin's descriptors, threads and
// children stay flat, and no byte-channel directory is left behind; each
// session still echoes after each takeover.
func TestRestartsLeakNothing(t *testing.T) {
	tmp := t.TempDir()
	srv := startKeeping(t, e2etest.Options{Env: []string{"TMPDIR=" + tmp}})
	var ids []string
	for i := range 4 {
		ids = append(ids, srv.CreateSession(t, map[string]any{"id": fmt.Sprintf("s%d", i), "command": []string{"/bin/sh", "-c",
			`while read l; do echo "got:$l"; i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done; done`}}))
	}
	plugins := children(srv.Pid(t))
	if len(plugins) != 1 {
		t.Fatalf("plugins %v", plugins)
	}
	plugin := plugins[0]
	var base [4]int
	for round := range 10 {
		for _, id := range ids {
			tm := srv.Attach(t, id)
			key := fmt.Sprintf("r%dk%s", round, id)
			tm.Send(key + "\r")
			tm.WaitOutput("got:" + key)
			tm.Resize(100+round, 30)
			tm.Send("x\r")
			tm.Conn.Close()
		}
		time.Sleep(200 * time.Millisecond)
		fds, threads, kids, dirs := seamPluginStats(t, plugin, tmp)
		t.Logf("round %d: plugin fds %d threads %d children %d channel dirs %d", round, fds, threads, kids, dirs)
		if round == 1 {
			base = [4]int{fds, threads, kids, dirs}
		}
		if round > 1 && (fds > base[0] || kids != 4 || dirs != 0) {
			t.Errorf("round %d: fds %d (was %d), children %d, channel dirs %d", round, fds, base[0], kids, dirs)
		}
		if round%2 == 0 {
			srv.Kill(t)
		} else {
			_ = srv.Stop(t, 20*time.Second)
		}
		srv = srv.Restart(t)
	}
}
