package api

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// recordingAPI is an API over a manager that records sessions on request,
// with a full and a read-only token.
func recordingAPI(t *testing.T) *apiHarness {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "recordings")
	return newAPI(t, Options{Token: "tok", ReadToken: "ro"}, func(o *core.Options) { o.RecordingDir = dir })
}

// getRaw fetches path and returns its status, Content-Type and body.
func (a *apiHarness) getRaw(t *testing.T, path string, hdr ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// A session created with "record": true has a recording the full and the
// read-only token may download; a page of another origin, a request
// without a token or with a wrong one may not; a session without one, or
// an unknown one, is 404.
func TestRecordingEndpoint(t *testing.T) {
	api := recordingAPI(t)
	auth := []string{"Authorization", "Bearer tok"}
	code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"rec1","environment_id":"fake","record":true}`, auth...)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	api.env.Last(t).Output(t, []byte("hello\r\n"))
	code, body = api.do(t, "POST", "/api/v1/sessions", `{"id":"plain","environment_id":"fake"}`, auth...)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}

	path := "/api/v1/sessions/rec1/recording"
	var got string
	eventually(t, "the output in the recording", func() bool {
		code, ct, b := api.getRaw(t, path, auth...)
		got = b
		return code == 200 && ct == "application/x-asciicast" && strings.Contains(b, `"o", "hello\r\n"]`)
	})
	if !strings.HasPrefix(got, `{"version":2,"width":80,"height":24,`) {
		t.Fatalf("recording %q: want the asciicast v2 header first", got)
	}
	if code, _, b := api.getRaw(t, path, "Authorization", "Bearer ro"); code != 200 || b == "" {
		t.Errorf("read-only token: %d %q, want 200 with the recording", code, b)
	}

	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"cross-origin page", path, append([]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"cross-site fetch without origin", path, append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"rebound host", path, append([]string{"Host", "evil.example"}, auth...), 421},
		{"no token", path, nil, 401},
		{"wrong token", path, []string{"Authorization", "Bearer nope"}, 401},
		{"not recorded", "/api/v1/sessions/plain/recording", auth, 404},
		{"unknown session", "/api/v1/sessions/nope/recording", auth, 404},
		{"bad id", "/api/v1/sessions/a%20b/recording", auth, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, "GET", tt.path, "", tt.hdr...)
			if code != tt.want || body["error"] == nil {
				t.Errorf("status %d %v, want %d with an error", code, body, tt.want)
			}
		})
	}
	for _, method := range []string{"POST", "PUT", "DELETE"} {
		if code, _ := api.do(t, method, path, `{}`, auth...); code != 405 {
			t.Errorf("%s: %d, want 405", method, code)
		}
	}
}

// "record" is a boolean; a server without a recording directory refuses
// true, and a recording of a server that records nothing is 404.
func TestRecordField(t *testing.T) {
	api := recordingAPI(t)
	plain := newAPI(t, Options{}, nil)
	for _, tt := range []struct {
		name string
		api  *apiHarness
		body string
		want int
	}{
		{"string", api, `{"environment_id":"fake","record":"yes"}`, 400},
		{"number", api, `{"environment_id":"fake","record":1}`, 400},
		{"null is the server's", api, `{"environment_id":"fake","record":null}`, 201},
		{"false", api, `{"environment_id":"fake","record":false}`, 201},
		{"no recording directory", plain, `{"environment_id":"fake","record":true}`, 400},
		{"no recording directory, false", plain, `{"environment_id":"fake","record":false}`, 201},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := tt.api.do(t, "POST", "/api/v1/sessions", tt.body, "Authorization", "Bearer tok")
			if code != tt.want {
				t.Fatalf("status %d %v, want %d", code, body, tt.want)
			}
			if code == 400 && !strings.Contains(body["error"].(string), "record") {
				t.Errorf("error %v does not name the field", body)
			}
		})
	}
	if code, body := plain.do(t, "GET", "/api/v1/sessions/x/recording", ""); code != 404 {
		t.Errorf("recording on a server without recordings: %d %v, want 404", code, body)
	}
}

// An environment's "record" applies to its sessions that do not say; a
// session's own field wins; null returns the environment to the server's
// setting; anything but a boolean (or null, in an update) is 400, and so
// is true on a server that keeps no recordings. The setting is stored.
func TestEnvironmentRecord(t *testing.T) {
	api := recordingAPI(t)
	auth := []string{"Authorization", "Bearer tok"}
	recorded := func(id string) bool {
		t.Helper()
		code, _, _ := api.getRaw(t, "/api/v1/sessions/"+id+"/recording", auth...)
		return code == 200
	}
	create := func(body string) string {
		t.Helper()
		code, out := api.do(t, "POST", "/api/v1/sessions", body, auth...)
		if code != 201 {
			t.Fatalf("create %s: %d %v", body, code, out)
		}
		return out["id"].(string)
	}
	for _, tt := range []struct{ name, body string }{
		{"string", `{"id":"e1","type":"FAKE","record":"yes"}`},
		{"number", `{"id":"e1","type":"FAKE","record":1}`},
	} {
		if code, out := api.do(t, "POST", "/api/v1/environments", tt.body, auth...); code != 400 {
			t.Errorf("create environment, %s: %d %v, want 400", tt.name, code, out)
		}
	}
	code, out := api.do(t, "POST", "/api/v1/environments", `{"id":"rec","type":"FAKE","record":true}`, auth...)
	if code != 201 || out["record"] != true {
		t.Fatalf("create environment: %d %v, want 201 with record true", code, out)
	}
	if code, out := api.do(t, "GET", "/api/v1/environments/rec", "", auth...); code != 200 || out["record"] != true {
		t.Fatalf("get environment: %d %v, want record true stored", code, out)
	}
	if id := create(`{"environment_id":"rec"}`); !recorded(id) {
		t.Errorf("a session of a recording environment is not recorded")
	}
	if id := create(`{"environment_id":"rec","record":false}`); recorded(id) {
		t.Errorf("a session that said record false is recorded")
	}

	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"string", `{"record":"no"}`, 400},
		{"number", `{"record":0}`, 400},
		{"null", `{"record":null}`, 200},
	} {
		if code, out := api.do(t, "PUT", "/api/v1/environments/rec", tt.body, auth...); code != tt.want {
			t.Errorf("update, %s: %d %v, want %d", tt.name, code, out, tt.want)
		}
	}
	if code, out := api.do(t, "GET", "/api/v1/environments/rec", "", auth...); code != 200 || out["record"] != nil {
		t.Fatalf("after record null: %d %v, want no record field", code, out)
	}
	if id := create(`{"environment_id":"rec"}`); recorded(id) {
		t.Errorf("a session of an environment back on the server's setting (off) is recorded")
	}
	if code, out := api.do(t, "PUT", "/api/v1/environments/rec", `{"record":false}`, auth...); code != 200 || out["record"] != false {
		t.Errorf("update to false: %d %v", code, out)
	}

	plain := newAPI(t, Options{}, nil)
	if code, out := plain.do(t, "POST", "/api/v1/environments", `{"id":"r","type":"FAKE","record":true}`); code != 400 {
		t.Errorf("record true without recordings: %d %v, want 400", code, out)
	}
}
