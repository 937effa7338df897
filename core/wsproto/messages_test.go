package wsproto

import (
	"encoding/json"
	"strings"
	"testing"
)

// The server's messages encode exactly as docs/protocol.md shows them.
func TestMessageEncoding(t *testing.T) {
	for _, tt := range []struct {
		msg  any
		want string
	}{
		{Hello{SessionID: "s1", Cols: 80, Rows: 24, Offset: 1234, End: 2000}, `{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":1234,"end":2000}`},
		// An End before the Offset (unset) is the Offset: no history.
		{Hello{SessionID: "s1", Cols: 80, Rows: 24, Offset: 1234}, `{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":1234,"end":1234}`},
		{Hello{SessionID: "s1", Cols: 80, Rows: 24}, `{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":0,"end":0}`},
		{Hello{SessionID: "s1", Epoch: "k3j9", Cols: 80, Rows: 24}, `{"type":"hello","session_id":"s1","epoch":"k3j9","cols":80,"rows":24,"offset":0,"end":0}`},
		{Resize{Cols: 100, Rows: 30}, `{"type":"resize","cols":100,"rows":30}`},
		{Reset{Offset: 0}, `{"type":"reset","offset":0,"end":0}`},
		{Reset{Offset: 5678, End: 6000}, `{"type":"reset","offset":5678,"end":6000}`},
		{Exit{}, `{"type":"exit","code":0,"signal":"","reason":""}`},
		{Exit{Code: -1, Signal: "SIGKILL", Reason: "plugin_crashed"}, `{"type":"exit","code":-1,"signal":"SIGKILL","reason":"plugin_crashed"}`},
		{Error{Message: "no"}, `{"type":"error","message":"no"}`},
	} {
		b, err := json.Marshal(tt.msg)
		if err != nil || string(b) != tt.want {
			t.Errorf("%#v encodes as %s, %v; want %s", tt.msg, b, err, tt.want)
		}
	}
}

// What the server encodes, ParseMessage decodes back.
func TestParseMessageRoundTrip(t *testing.T) {
	h := Hello{SessionID: "s1", Cols: 80, Rows: 24, Offset: 9, End: 12}
	b, _ := json.Marshal(h)
	m, err := ParseMessage(b)
	if err != nil || m.Type != TypeHello || m.Hello() != h {
		t.Errorf("hello: %+v, %v", m, err)
	}
	// A server older than End sends none: no history.
	if m, err := ParseMessage([]byte(`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":9}`)); err != nil || m.Hello().End != 9 {
		t.Errorf("hello without end: %+v, %v; want End 9", m, err)
	}
	e := Exit{Code: 3, Signal: "SIGTERM", Reason: "r"}
	b, _ = json.Marshal(e)
	if m, err := ParseMessage(b); err != nil || m.Type != TypeExit || m.Exit() != e {
		t.Errorf("exit: %+v, %v", m, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"type":""}`, `[1]`, `{"type":"hello","cols":"80"}`} {
		if _, err := ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%q) accepted it", bad)
		}
	}
	// A type this client does not know still decodes: a newer server may
	// send more.
	if m, err := ParseMessage([]byte(`{"type":"bell","volume":3}`)); err != nil || m.Type != "bell" {
		t.Errorf("unknown type: %+v, %v", m, err)
	}
}

func TestParseClientMessage(t *testing.T) {
	if r, err := ParseClientMessage([]byte(`{"type":"resize","cols":100,"rows":30}`)); err != nil || r != (Resize{100, 30}) {
		t.Errorf("resize: %+v, %v", r, err)
	}
	// The range is the server's to check.
	if r, err := ParseClientMessage([]byte(`{"type":"resize","cols":0,"rows":-1}`)); err != nil || r != (Resize{0, -1}) {
		t.Errorf("resize out of range: %+v, %v", r, err)
	}
	for in, want := range map[string]string{
		`{"type":"resize","cols":80}`:                      "resize needs integer cols and rows",
		`{"type":"resize","cols":null,"rows":2}`:           "resize needs integer cols and rows",
		`{"type":"resize","cols":1.5,"rows":2}`:            "invalid control message",
		`{"type":"hello"}`:                                 `unknown control message type "hello"`,
		`{"cols":1,"rows":2}`:                              `control message has no "type"`,
		`not json`:                                         "invalid control message",
		`{"type":"resize","cols":1,"rows":2,"offset":"x"}`: "invalid control message",
	} {
		r, err := ParseClientMessage([]byte(in))
		if err == nil || !strings.HasPrefix(err.Error(), want) || r != (Resize{}) {
			t.Errorf("%s: %+v, %v; want an error starting %q", in, r, err, want)
		}
	}
	// Resize encodes what ParseClientMessage accepts.
	b, _ := json.Marshal(Resize{Cols: 7, Rows: 8})
	if r, err := ParseClientMessage(b); err != nil || r != (Resize{7, 8}) {
		t.Errorf("round trip: %+v, %v", r, err)
	}
}

// A control message that is not a JSON object, or has a field of the
// wrong type, is refused in JSON's words: no Go type, package or struct
// in the error, which the server sends the client as it is.
func TestControlMessageErrors(t *testing.T) {
	for in, want := range map[string]string{
		`[]`:                                    "control message must be a JSON object, not an array",
		` [{"type":"resize"}]`:                  "control message must be a JSON object, not an array",
		`"resize"`:                              "control message must be a JSON object, not a string",
		`42`:                                    "control message must be a JSON object, not a number",
		`-1.5e3`:                                "control message must be a JSON object, not a number",
		`null`:                                  "control message must be a JSON object, not null",
		`true`:                                  "control message must be a JSON object, not a boolean",
		`{"type":1}`:                            `invalid control message: "type" must be a string, not a number`,
		`{"type":"resize","cols":"x","rows":1}`: `invalid control message: "cols" must be an integer, not a string`,
		`{"type":"resize","cols":1.5,"rows":2}`: `invalid control message: "cols" must be an integer, not the number 1.5`,
		`{"type":"resize","cols":1,"rows":[2]}`: `invalid control message: "rows" must be an integer, not an array`,
		`{"type":"resize","cols":1,"rows":2,"code":{}}`:     `invalid control message: "code" must be an integer, not an object`,
		`{"type":"resize","cols":1,"rows":2,"reason":true}`: `invalid control message: "reason" must be a string, not a boolean`,
		`not json`: "invalid control message: invalid character",
	} {
		_, errClient := ParseClientMessage([]byte(in))
		_, errServer := ParseMessage([]byte(in))
		for _, err := range []error{errClient, errServer} {
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: %v; want an error starting %q", in, err, want)
				continue
			}
			for _, internal := range []string{"Go ", "struct", "wsproto.", "json:", "int64", "*int"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("%s: %q shows Go's %q", in, err, internal)
				}
			}
		}
	}
}

func TestURLs(t *testing.T) {
	if got := AttachPath("a b/c"); got != "/api/v1/sessions/a%20b%2Fc/attach" {
		t.Errorf("AttachPath = %q", got)
	}
	for in, want := range map[string]string{
		"http://127.0.0.1:7420": "ws://127.0.0.1:7420",
		"https://example.com/x": "wss://example.com/x",
		"ws://h":                "ws://h",
	} {
		if got := WSURL(in); got != want {
			t.Errorf("WSURL(%q) = %q, want %q", in, got, want)
		}
	}
}
