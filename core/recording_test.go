package core

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ptyhost/ptyhost/shared"
)

// castEvent is one parsed event line of a recording.
type castEvent struct {
	t    float64
	kind string
	data string
}

// readCast parses a recording: its header and every event, failing the
// test on any line that is not asciicast v2.
func readCast(t *testing.T, path string) (map[string]any, []castEvent) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatal("no header line")
	}
	var header map[string]any
	if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
		t.Fatalf("header %q: %v", sc.Text(), err)
	}
	var events []castEvent
	for sc.Scan() {
		var raw []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil || len(raw) != 3 {
			t.Fatalf("event line %q: want [time, type, data]: %v", sc.Text(), err)
		}
		var e castEvent
		if json.Unmarshal(raw[0], &e.t) != nil || json.Unmarshal(raw[1], &e.kind) != nil || json.Unmarshal(raw[2], &e.data) != nil {
			t.Fatalf("event line %q: want [number, string, string]", sc.Text())
		}
		if n := len(events); n > 0 && e.t < events[n-1].t {
			t.Fatalf("event %q goes back in time after %v", sc.Text(), events[n-1])
		}
		events = append(events, e)
	}
	return header, events
}

func newTestRecorder(t *testing.T, maxBytes int64) (*recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recordings", "s1.cast")
	r, err := newRecorder(path, recorderConfig{cols: 80, rows: 24, start: time.Unix(1700000000, 0), term: "xterm-256color",
		input: true, maxBytes: maxBytes, log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

// A recorder writes the header and events, cuts output at UTF-8
// boundaries (a character split across reads is carried), writes invalid
// bytes as U+FFFD, and makes its file 0600 in a 0700 directory.
func TestRecorderEvents(t *testing.T) {
	r, path := newTestRecorder(t, 0)
	r.output([]byte("héllo \xe2\x82")) // "€" split across two reads
	r.output([]byte("\xac!"))
	r.resize(100, 30)
	r.recordInput([]byte("ls\r"))
	r.output([]byte("bad\xffbyte"))
	r.output([]byte("end\xe2")) // ends inside a character
	r.close()

	header, events := readCast(t, path)
	want := map[string]any{"version": 2.0, "width": 80.0, "height": 24.0, "timestamp": 1700000000.0, "env": map[string]any{"TERM": "xterm-256color"}}
	if got, _ := json.Marshal(header); string(got) != string(must(json.Marshal(want))) {
		t.Fatalf("header %s, want %v", got, want)
	}
	var kinds, datas []string
	for _, e := range events {
		kinds, datas = append(kinds, e.kind), append(datas, e.data)
	}
	if got, want := strings.Join(kinds, ","), "o,o,r,i,o,o,o"; got != want {
		t.Fatalf("event types %s, want %s (%q)", got, want, datas)
	}
	wantData := []string{"héllo ", "€!", "100x30", "ls\r", "bad\uFFFDbyte", "end", "\uFFFD"}
	for i, d := range wantData {
		if datas[i] != d {
			t.Errorf("event %d data %q, want %q", i, datas[i], d)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v (%v), want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v), want 0700", di.Mode(), err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// A recording stops at its bound with a final marker, and the file stays
// within it.
func TestRecorderBound(t *testing.T) {
	const limit = 4 << 10
	r, path := newTestRecorder(t, limit)
	for range 100 {
		r.output([]byte(strings.Repeat("x", 100)))
	}
	r.close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit {
		t.Fatalf("recording is %d bytes, over its limit of %d", fi.Size(), limit)
	}
	_, events := readCast(t, path)
	last := events[len(events)-1]
	if last.kind != "m" || !strings.Contains(last.data, "limit of 4096 bytes") {
		t.Fatalf("last event %+v, want the limit's marker", last)
	}
	for i, e := range events[:len(events)-1] {
		whole := e.data == strings.Repeat("x", 100)
		cut := i == len(events)-2 && strings.HasPrefix(strings.Repeat("x", 100), e.data)
		if e.kind != "o" || !whole && !cut {
			t.Fatalf("event %+v, want the output as written (the last one cut)", e)
		}
	}
}

// A create's TERM of any length leaves the header far within the
// smallest bound: it is cut, at a character, and the output after it is
// recorded, within the bound.
func TestRecorderLongTerm(t *testing.T) {
	const limit = 4 << 10
	path := filepath.Join(t.TempDir(), "s1.cast")
	term := strings.Repeat("é", 5000)
	r, err := newRecorder(path, recorderConfig{cols: 80, rows: 24, start: time.Unix(1700000000, 0), term: term,
		maxBytes: limit, log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.output([]byte("hello"))
	r.close()
	header, events := readCast(t, path)
	got, _ := header["env"].(map[string]any)["TERM"].(string)
	if len(got) > maxTermBytes || !strings.HasPrefix(term, got) || !utf8.ValidString(got) {
		t.Errorf("header TERM of %d bytes, want a whole-character prefix of at most %d", len(got), maxTermBytes)
	}
	if len(events) != 1 || events[0].data != "hello" {
		t.Errorf("events %+v, want the output", events)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > limit {
		t.Errorf("recording %v bytes (%v), want at most %d", fi.Size(), err, limit)
	}
}

// No room at all records none of the output, and does not fail.
func TestFitOutputNoRoom(t *testing.T) {
	for _, room := range []int64{-1000, -1, 0, 3} {
		if got := fitOutput(time.Second, "hello", room); got != nil {
			t.Errorf("fitOutput(room %d) = %q, want nil", room, got)
		}
	}
}

func TestIncompleteTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int
	}{
		{"ascii", "abc", 0},
		{"whole 2-byte", "é", 0},
		{"first of 2", "a\xc3", 1},
		{"two of 3", "a\xe2\x82", 2},
		{"three of 4", "\xf0\x9f\x98", 3},
		{"whole 4-byte", "😀", 0},
		{"stray continuation", "a\x82", 0},
		{"invalid lead", "a\xff", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := incompleteTail([]byte(tc.in)); got != tc.want {
				t.Fatalf("incompleteTail(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

// An output event that passes the bound is recorded up to it, cut at a
// character and counting its escapes, before the marker.
func TestRecorderBoundCutsOutput(t *testing.T) {
	const limit = 4 << 10
	for _, tc := range []struct{ name, unit string }{
		{"ascii", "x"},
		{"multibyte", "€"},
		{"escaped", "\x1b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, path := newTestRecorder(t, limit)
			out := strings.Repeat(tc.unit, limit)
			r.output([]byte(out))
			r.close()
			fi, err := os.Stat(path)
			if err != nil || fi.Size() > limit || fi.Size() < limit*3/4 {
				t.Fatalf("recording %v (%v), want most of %d bytes and no more", fi.Size(), err, limit)
			}
			_, events := readCast(t, path)
			if len(events) != 2 || events[0].kind != "o" || events[1].kind != "m" {
				t.Fatalf("events %+v, want output then the marker", events)
			}
			if d := events[0].data; !strings.HasPrefix(out, d) || d == "" || strings.ContainsRune(d, '\uFFFD') {
				t.Fatalf("recorded output of %d bytes is not a whole-character prefix of the output", len(d))
			}
		})
	}
}

// A writer that falls behind never holds the session up: past the queue's
// bound newer events are dropped, and a marker says how many.
func TestRecorderDropsWhenBehind(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// The pipe is not read until every event is queued: the writer
	// blocks on it, as on a stalled disk.
	r := &recorder{started: time.Now(), log: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1),
		done: make(chan struct{}), f: pw, w: bufio.NewWriterSize(pw, 16), max: 1 << 40}
	go r.run()
	chunk := []byte(strings.Repeat("y", 64<<10))
	const n = 2 * recordQueueBytes / (64 << 10)
	start := time.Now()
	for range n {
		r.output(chunk)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("queueing took %v: the output path waited for the writer", d)
	}
	read := make(chan string)
	go func() {
		b, _ := io.ReadAll(pr)
		read <- string(b)
	}()
	r.close()
	got := <-read
	// The header, the output events kept and the drop marker, which
	// follows the events queued before the drops: last, unless the writer
	// took the queue between a drop and the last event (a loaded machine
	// may not start it before the queue is full), and more were queued.
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	outputs, markers := 0, 0
	for _, l := range lines[1:] {
		switch {
		case strings.Contains(l, `"m", "ptyhost: `) && strings.Contains(l, "were dropped: the recording fell behind"):
			markers++
		case strings.Contains(l, `"o", "`):
			outputs++
		default:
			t.Fatalf("unexpected line %.200q", l)
		}
	}
	if markers == 0 {
		t.Fatalf("no drop marker in the recording's %d lines", len(lines))
	}
	if outputs < n/4 || outputs >= n {
		t.Fatalf("%d output events recorded of %d, want some dropped", outputs, n)
	}
}

func TestValidateRecording(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"none", Options{}, true},
		{"dir only", Options{RecordingDir: "/r"}, true},
		{"record", Options{RecordingDir: "/r", Record: true, RecordInput: true, RecordingMaxBytes: 4 << 10}, true},
		{"record without dir", Options{Record: true}, false},
		{"input without dir", Options{RecordInput: true}, false},
		{"negative bound", Options{RecordingDir: "/r", RecordingMaxBytes: -1}, false},
		{"tiny bound", Options{RecordingDir: "/r", RecordingMaxBytes: 100}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.validateRecording(); (err == nil) != tc.ok {
				t.Fatalf("validateRecording() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// A recording being written is served up to its last whole line.
func TestCompleteLines(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          int64
	}{
		{"empty", "", 0},
		{"whole", "{}\n[1]\n", 7},
		{"partial last line", "{}\n[1]\n[2, \"o\"", 7},
		{"no line yet", "{\"version\"", 0},
		{"long partial", "{}\n" + strings.Repeat("x", 10000), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.cast")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got, err := completeLines(f); err != nil || got != tc.want {
				t.Fatalf("completeLines = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// A session created again under an id, unrecorded, has no recording: the
// earlier session's is not served as its own (ErrNoRecording), and is
// removed.
func TestRecreatedUnrecordedHasNoRecording(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, func(o *Options) { o.RecordingDir = dir; o.Record = true })
	_, p := h.create(t, "s1")
	p.Output(t, []byte("first session's output\r\n"))
	p.End(shared.ExitStatus{})
	eventually(t, "the exit", func() bool {
		r, _ := h.m.GetSession(context.Background(), "s1")
		return r.Status == StatusTerminated
	})
	no := false
	if _, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "s1", EnvironmentID: "fake", Record: &no}); err != nil {
		t.Fatal(err)
	}
	if rc, _, err := h.m.OpenRecording(context.Background(), "s1"); !errors.Is(err, ErrNoRecording) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("OpenRecording of the new, unrecorded s1: %v, want ErrNoRecording", err)
	}
}

// A recording whose disk does not take its writes (here a pipe nobody
// reads) does not hold the session's end: close returns within
// recorderCloseWait.
func TestRecorderCloseOnStuckDisk(t *testing.T) {
	defer func(d time.Duration) { recorderCloseWait = d }(recorderCloseWait)
	recorderCloseWait = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "s1.cast")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads, so that the writer's open succeeds and
	// its writes block once the pipe is full.
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close() // last: it lets the blocked writer finish
	defer func(f func(string) (*os.File, error)) { createRecordingFile = f }(createRecordingFile)
	createRecordingFile = func(path string) (*os.File, error) { return os.OpenFile(path, os.O_WRONLY, 0) }
	r, err := newRecorder(path, recorderConfig{cols: 80, rows: 24, start: time.Unix(1700000000, 0), term: "xterm",
		maxBytes: 64 << 20, log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for range 64 {
		r.output(bytes.Repeat([]byte("x"), 16<<10))
	}
	start := time.Now()
	r.close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("close took %v with the disk stuck, want about %v", d, recorderCloseWait)
	}
	select {
	case <-r.done:
		t.Fatal("the writer finished on a disk that takes nothing")
	default:
	}
}

// A recording made under an id whose earlier recording is still being
// written (its close gave up on a slow disk) is a file of its own: the
// earlier writer's late events do not land in it.
func TestRecordingReplacesWithNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s1.cast")
	cfg := recorderConfig{cols: 80, rows: 24, start: time.Unix(1700000000, 0), term: "xterm", log: slog.New(slog.DiscardHandler)}
	old, err := newRecorder(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := newRecorder(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old.output([]byte(strings.Repeat("old session ", 100)))
	old.close()
	cur.output([]byte("new session"))
	cur.close()
	_, events := readCast(t, path)
	if len(events) != 1 || events[0].data != "new session" {
		t.Errorf("events %+v, want only the new session's", events)
	}
}
