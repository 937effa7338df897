package main

// Recording (asciicast v2), through the real server, the real HOST plugin
// and the real ptyhost binary.

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// castEvent is one event line of a recording.
type castEvent struct {
	T    float64
	Kind string
	Data string
}

// parseCast parses a recording line by line, failing the test unless the
// header has exactly asciicast v2's fields and every event is
// [time, type, data] with times that never go back.
func parseCast(t *testing.T, cast string) (map[string]any, []castEvent) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(cast))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("recording %q has no header", cast)
	}
	var header map[string]any
	if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
		t.Fatalf("header %q: %v", sc.Text(), err)
	}
	var events []castEvent
	for sc.Scan() {
		var raw []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil || len(raw) != 3 {
			t.Fatalf("event %q: want [time, type, data] (%v)", sc.Text(), err)
		}
		var e castEvent
		if json.Unmarshal(raw[0], &e.T) != nil || json.Unmarshal(raw[1], &e.Kind) != nil || json.Unmarshal(raw[2], &e.Data) != nil {
			t.Fatalf("event %q: want [number, string, string]", sc.Text())
		}
		if e.T < 0 || len(events) > 0 && e.T < events[len(events)-1].T {
			t.Fatalf("event %q: its time goes back", sc.Text())
		}
		events = append(events, e)
	}
	if !strings.HasSuffix(cast, "\n") {
		t.Fatalf("recording does not end with a newline: %q", cast[max(0, len(cast)-100):])
	}
	return header, events
}

// A session created with "record": true is recorded: `ptyhost rec PREFIX`
// writes a file whose header is asciicast v2's, whose "o" events together
// are exactly the output a client received — a character split across
// two writes whole in one event — with the client's resize as an "r"
// event; the file is 0600 in a 0700 directory of the data directory.
func TestE2ERecording(t *testing.T) {
	srv := startServer(t)
	before := time.Now().Unix()
	id := srv.CreateSession(t, map[string]any{
		"id":     "recorded-session",
		"record": true,
		// "€" is \342\202\254: its bytes are written apart.
		"command": []string{"/bin/sh", "-c", `printf 'h\303\251llo \342\202'; sleep 0.3; printf '\254 world\n'; read x; printf 'done %s\n' "$x"`},
	})
	a := srv.Attach(t, id)
	a.WaitOutput("€ world")
	a.Resize(100, 30)
	a.WaitControl("resize")
	a.Send("go\r")
	a.WaitOutput("done go")
	if err := a.WaitEnd(); !closedNormally(err) {
		t.Fatalf("session end: %v", err)
	}

	code, cast, stderr := cli(t, srv.URL, "rec", "recorded")
	if code != 0 {
		t.Fatalf("ptyhost rec: exit %d: %s", code, stderr)
	}
	header, events := parseCast(t, cast)
	ts, _ := header["timestamp"].(float64)
	if len(header) != 5 || header["version"] != 2.0 || header["width"] != 80.0 || header["height"] != 24.0 ||
		ts < float64(before) || ts > float64(time.Now().Unix()) || ts != float64(int64(ts)) {
		t.Fatalf("header %v: want version 2, 80x24, the start's Unix time and env", header)
	}
	if env, _ := header["env"].(map[string]any); len(env) != 1 || env["TERM"] != "xterm-256color" {
		t.Fatalf("header env %v, want TERM only", header["env"])
	}
	var out strings.Builder
	var resizes []string
	euroWhole := false
	for _, e := range events {
		switch e.Kind {
		case "o":
			out.WriteString(e.Data)
			euroWhole = euroWhole || strings.Contains(e.Data, "€")
			if strings.ContainsRune(e.Data, '\uFFFD') {
				t.Errorf("output event %q holds U+FFFD", e.Data)
			}
		case "r":
			resizes = append(resizes, e.Data)
		default:
			t.Errorf("event %+v: want only output and resizes (input is not recorded by default)", e)
		}
	}
	if out.String() != string(a.Out) {
		t.Fatalf("the recording's output\n%q\nis not what the client received\n%q", out.String(), a.Out)
	}
	if !euroWhole {
		t.Errorf("no output event holds \"€\" whole: %+v", events)
	}
	if len(resizes) != 1 || resizes[0] != "100x30" {
		t.Errorf("resize events %q, want [100x30]", resizes)
	}

	path := filepath.Join(srv.DataDir, "recordings", id+".cast")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, want mode 0600", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("recordings directory: %v, want mode 0700", err)
	}
}

// With --record every session is recorded unless it says "record": false;
// a recording stops at --record-max-bytes with a marker, within the bound;
// rec of a session without a recording, of an unknown one, or without an
// ID fails.
func TestE2ERecordingBoundAndRefusals(t *testing.T) {
	srv := startServer(t, "--record", "--record-max-bytes", "4KiB")
	id := srv.CreateSession(t, map[string]any{
		// Lines of 100 bytes: even when each is read, and recorded, on
		// its own, the events' framing is a small part of the bound.
		"command": []string{"/bin/sh", "-c", `i=0; while [ $i -lt 400 ]; do printf 'line %3d of the flood %077d\n' $i 0; i=$((i+1)); done; sleep 60`},
	})
	a := srv.Attach(t, id)
	a.WaitOutput("line 399 of the flood")
	srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil)

	code, cast, stderr := cli(t, srv.URL, "rec", id)
	if code != 0 {
		t.Fatalf("ptyhost rec: exit %d: %s", code, stderr)
	}
	if len(cast) > 4<<10 {
		t.Fatalf("recording is %d bytes, over the 4KiB bound", len(cast))
	}
	_, events := parseCast(t, cast)
	last := events[len(events)-1]
	if last.Kind != "m" || !strings.Contains(last.Data, "limit of 4096 bytes") {
		t.Fatalf("last event %+v, want the bound's marker", last)
	}
	var out strings.Builder
	for _, e := range events[:len(events)-1] {
		out.WriteString(e.Data)
	}
	if !strings.HasPrefix(string(a.Out), out.String()) || out.Len() < 2<<10 {
		t.Fatalf("recorded output %q: want a prefix of the output, most of the bound", out.String())
	}

	plain := srv.CreateSession(t, map[string]any{"record": false, "command": []string{"sleep", "60"}})
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not recorded", []string{"rec", plain}, 1, "has no recording"},
		{"unknown", []string{"rec", "no-such-session"}, 1, "not found"},
		{"no ID", []string{"rec"}, 2, "want one session ID"},
		{"two IDs", []string{"rec", id, plain}, 2, "want one session ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := cli(t, srv.URL, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", code, out, stderr, tt.code, tt.msg)
			}
		})
	}
}

// Bad recording settings are refused, naming the setting.
func TestRecordSettingsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		msg  string
	}{
		{"too small", []string{"--record-max-bytes", "1KiB"}, nil, "at least 4KiB"},
		{"not a size", []string{"--record-max-bytes", "big"}, nil, "record-max-bytes"},
		{"record not a bool", []string{"--record=yes"}, nil, "record"},
		{"variable", nil, []string{"PTYHOST_RECORD", "maybe"}, "PTYHOST_RECORD"},
		{"size variable", nil, []string{"PTYHOST_RECORD_MAX_BYTES", "0"}, "PTYHOST_RECORD_MAX_BYTES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i+1 < len(tt.env); i += 2 {
				t.Setenv(tt.env[i], tt.env[i+1])
			}
			_, err := parseServeFlags(tt.args, stdio{out: &strings.Builder{}, err: &strings.Builder{}})
			if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want a usage error naming %q", err, tt.msg)
			}
		})
	}
	for _, tt := range []struct{ file, msg string }{
		{"record = \"yes\"\n", "a bool is required"},
		{"record_max_bytes = \"12\"\n", "record_max_bytes"},
		{"record_input = 1\n", "bool required"},
	} {
		conf := filepath.Join(t.TempDir(), "ptyhost.hcl")
		if err := os.WriteFile(conf, []byte(tt.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := parseServeFlags([]string{"--config", conf}, stdio{out: &strings.Builder{}, err: &strings.Builder{}})
		if err == nil || !strings.Contains(err.Error(), "ptyhost.hcl:1,") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("config %q: error %v, want one at line 1 saying %q", tt.file, err, tt.msg)
		}
	}
}

// With --record-input what a client types is recorded too, as "i" events,
// between the output it follows and the echo it causes.
func TestE2ERecordingInput(t *testing.T) {
	srv := startServer(t, "--record-input")
	id := srv.CreateSession(t, map[string]any{"record": true, "command": []string{"/bin/sh", "-c", `echo ready; read x; echo "got $x"`}})
	a := srv.Attach(t, id)
	a.WaitOutput("ready")
	a.Send("typed €\r")
	a.WaitOutput("got typed €")
	if err := a.WaitEnd(); !closedNormally(err) {
		t.Fatalf("session end: %v", err)
	}
	code, cast, stderr := cli(t, srv.URL, "rec", id)
	if code != 0 {
		t.Fatalf("ptyhost rec: exit %d: %s", code, stderr)
	}
	_, events := parseCast(t, cast)
	var before, after strings.Builder // output before and after the input
	inputs := 0
	for _, e := range events {
		switch {
		case e.Kind == "i" && e.Data == "typed €\r":
			inputs++
		case e.Kind == "o" && inputs == 0:
			before.WriteString(e.Data)
		case e.Kind == "o":
			after.WriteString(e.Data)
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if inputs != 1 || !strings.Contains(before.String(), "ready") || !strings.Contains(after.String(), "got typed €") {
		t.Fatalf("events %+v: want output, the input once, then its echo", events)
	}
	if before.String()+after.String() != string(a.Out) {
		t.Fatalf("recorded output %q, want %q", before.String()+after.String(), a.Out)
	}
}
