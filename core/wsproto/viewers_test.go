package wsproto

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
)

// The viewer's refusals and the attach modes are the ones docs/protocol.md
// shows.
func TestViewerMessagesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{MsgReadOnlyInput, MsgReadOnlyResize} {
		b, _ := json.Marshal(Error{Message: msg})
		want := strings.ReplaceAll(string(b), `","`, `", "`)
		want = strings.ReplaceAll(want, `":"`, `": "`)
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/protocol.md does not show %s", want)
		}
	}
	for _, s := range []string{"?" + ModeParam + "=" + ModeRead, "`" + ModeWrite + "`", CloseReasonTooManyClients} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/protocol.md does not mention %s", s)
		}
	}
}

// The query parameters a Dial sends: mode=read with or without an offset,
// the URL's own parameters kept.
func TestDialQuery(t *testing.T) {
	u, err := withOffset("ws://h/api/v1/sessions/a/attach?access_token=t", 42)
	if err != nil {
		t.Fatal(err)
	}
	u, err = withQuery(u, ModeParam, ModeRead)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	if q.Get(OffsetParam) != "42" || q.Get(ModeParam) != ModeRead || q.Get("access_token") != "t" {
		t.Errorf("query %q", parsed.RawQuery)
	}
}
