package api

import (
	"encoding/json"
	"testing"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// FuzzParseControl feeds arbitrary text frames to the WebSocket
// control-message decoder. It must never panic; what it accepts is a
// resize (the one message a client sends) with cols and rows in range and
// nothing else set that could be mistaken for a server message; what it
// refuses comes with a message for the client.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"type":"resize","cols":80,"rows":24}`,
		`{"type":"resize","cols":1,"rows":1}`,
		`{"type":"resize","cols":1000,"rows":1000}`,
		`{"type":"resize","cols":0,"rows":0}`,
		`{"type":"resize","cols":1001,"rows":24}`,
		`{"type":"resize","cols":-1,"rows":24}`,
		`{"type":"resize","cols":"80","rows":24}`,
		`{"type":"resize","cols":80}`,
		`{"type":"resize","cols":80.5,"rows":24}`,
		`{"type":"resize","cols":1e2,"rows":24}`,
		`{"type":"resize","cols":99999999999999999999,"rows":24}`,
		`{"type":"resize","cols":null,"rows":24}`,
		`{"TYPE":"resize","Cols":80,"ROWS":24}`,
		`{"type":"resize","cols":80,"rows":24,"type":"hello"}`,
		`{"type":"hello","cols":80,"rows":24}`,
		`{"type":"exit","code":0}`,
		`{"type":""}`,
		`{}`,
		`null`,
		`[]`,
		`"resize"`,
		`{"type":"resize","cols":80,"rows":24} {}`,
		`{"type":"resize","cols":80,"rows":24`,
		"{\"type\":\"re\\u0073ize\",\"cols\":80,\"rows\":24}",
		"\xff\xfe",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, err := parseControl(p)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: refused with an empty message", p)
			}
			if msg != (wsproto.Resize{}) {
				t.Fatalf("%q: refused (%v) but returned %+v", p, err, msg)
			}
			return
		}
		if !json.Valid(p) {
			t.Fatalf("%q: accepted text that is not JSON", p)
		}
		var raw struct {
			Type       string
			Cols, Rows *int
		}
		if json.Unmarshal(p, &raw) != nil || raw.Type != wsproto.TypeResize {
			t.Fatalf("%q: accepted type %q; a client sends only resize", p, raw.Type)
		}
		if raw.Cols == nil || raw.Rows == nil {
			t.Fatalf("%q: accepted a resize without cols or rows: %+v", p, msg)
		}
		if c, r := msg.Cols, msg.Rows; c < 1 || c > core.MaxTermSize || r < 1 || r > core.MaxTermSize {
			t.Fatalf("%q: accepted size %dx%d, outside 1..%d", p, c, r, core.MaxTermSize)
		}
		// What was accepted means the same once re-encoded.
		b, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseControl(b)
		if err != nil {
			t.Fatalf("%q: re-encoded as %s, refused: %v", p, b, err)
		}
		if again != msg {
			t.Fatalf("%q: re-encoded as %s, decoded to %+v", p, b, again)
		}
	})
}
