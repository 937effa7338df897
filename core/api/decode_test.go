package api

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// TestDecode pins what a request body may be: one JSON object, with white
// space around it and nothing else.
func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name, body string
		want       string // the decoded name, or the error's text
		ok         bool
	}{
		{"object", `{"name":"a"}`, "a", true},
		{"white space around", " \r\n\t{\"name\":\"a\"}\n\t \r\n", "a", true},
		{"empty object", `{}`, "", true},
		{"empty", ``, "request body is empty", false},
		{"white space only", " \n", "request body is empty", false},
		{"null", `null`, "not a JSON object", false},
		{"null after space", ` null `, "not a JSON object", false},
		{"array", `[{"name":"a"}]`, "not a JSON object", false},
		{"number", `1`, "not a JSON object", false},
		{"string", `"a"`, "not a JSON object", false},
		{"stray brace", `{"name":"a"}}`, "data after the JSON object", false},
		{"stray brackets", `{"name":"a"}]]]`, "data after the JSON object", false},
		{"second object", `{"name":"a"} {}`, "data after the JSON object", false},
		{"garbage", `{"name":"a"}x`, "data after the JSON object", false},
		{"unterminated", `{"name":"a"`, "unexpected EOF", false},
		{"unknown field", `{"nme":"a"}`, `unknown field "nme"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			var v body
			err := decode(r, &v)
			if tt.ok {
				if err != nil || v.Name != tt.want {
					t.Fatalf("decode = %+v, %v; want name %q", v, err, tt.want)
				}
				return
			}
			if !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode: %v; want an invalid argument saying %q", err, tt.want)
			}
		})
	}
}

// A field of the wrong type is named, with what it has and what belongs
// there in JSON's words: none of encoding/json's Go types and structs.
func TestDecodeTypeErrors(t *testing.T) {
	for body, want := range map[string]string{
		`{"command":"ls"}`:            `request body: "command" must be an array, not a string`,
		`{"command":[1]}`:             `request body: each element of "command" must be a string, not a number`,
		`{"env":{"A":1}}`:             `request body: each value of "env" must be a string, not a number`,
		`{"env":["A=1"]}`:             `request body: "env" must be an object, not an array`,
		`{"cols":"80"}`:               `request body: "cols" must be an integer, not a string`,
		`{"cols":1.5}`:                `request body: "cols" must be an integer, not the number 1.5`,
		`{"record":"yes"}`:            `request body: "record" must be a boolean, not a string`,
		`{"max_clients":true}`:        `request body: "max_clients" must be an integer, not a boolean`,
		`{"id":{}}`:                   `request body: "id" must be a string, not an object`,
		`{"cols":80,"command":"ls"} `: `request body: "command" must be an array, not a string`,
		`{"unset_env":[true]}`:        `request body: each element of "unset_env" must be a string, not a boolean`,
	} {
		var v sessionRequest
		err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), &v)
		if !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an invalid argument saying %s", body, err, want)
		}
		for _, internal := range []string{"Go ", "struct", "sessionRequest", "json:", "[]string", "*int"} {
			if err != nil && strings.Contains(err.Error(), internal) {
				t.Errorf("%s: %q shows Go's %q", body, err, internal)
			}
		}
	}
}

// TestDecodeEndpoints sends bodies that are not one JSON object to the
// endpoints that take one: each is 400 and changes nothing.
func TestDecodeEndpoints(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "s1")
	tests := []struct {
		name, method, path, body string
	}{
		{"environment with a stray brace", "POST", "/api/v1/environments", `{"id":"e1","type":"FAKE"}}`},
		{"environment with stray brackets", "POST", "/api/v1/environments", `{"id":"e2","type":"FAKE"}]]]`},
		{"null environment", "POST", "/api/v1/environments", `null`},
		{"null update", "PUT", "/api/v1/environments/fake", `null`},
		{"array update", "PUT", "/api/v1/environments/fake", `[]`},
		{"update with a stray brace", "PUT", "/api/v1/environments/fake", `{"name":"renamed"}}`},
		{"session with a stray bracket", "POST", "/api/v1/sessions", `{"id":"s2","environment_id":"fake"}]`},
		{"null session", "POST", "/api/v1/sessions", `null`},
		{"null restart", "POST", "/api/v1/sessions/s1/restart", `null`},
		{"restart with a stray brace", "POST", "/api/v1/sessions/s1/restart", `{}}`},
		{"null prune", "POST", "/api/v1/sessions/prune", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, tt.method, tt.path, tt.body)
			if msg, _ := body["error"].(string); code != 400 || !strings.HasPrefix(msg, "invalid argument: request body") {
				t.Fatalf("status %d %v, want 400 naming the request body", code, body)
			}
		})
	}
	for _, id := range []string{"e1", "e2"} {
		if code, body := api.do(t, "GET", "/api/v1/environments/"+id, ""); code != 404 {
			t.Errorf("environment %s: %d %v, want 404: a refused body created it", id, code, body)
		}
	}
	if code, body := api.do(t, "GET", "/api/v1/environments/fake", ""); code != 200 || body["name"] != "fake" {
		t.Errorf("environment fake: %d %v, want it unchanged", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/s2", ""); code != 404 {
		t.Errorf("session s2: %d %v, want 404: a refused body created it", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/s1", ""); code != 200 || body["restarts"] != nil {
		t.Errorf("session s1: %d %v, want it never restarted", code, body)
	}
}

// A PUT of an environment may send back what a GET gave, created_at and
// updated_at included, which are ignored; a value of the wrong type there
// is refused in JSON's words, not Go's time parser's. (Found by a review:
// "Time.UnmarshalJSON: input is not a JSON string".)
func TestUpdateEnvironmentTimesInJSONWords(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	for body, want := range map[string]string{
		`{"created_at":42}`:   `"created_at" must be a string, not a number`,
		`{"updated_at":true}`: `"updated_at" must be a string, not a boolean`,
	} {
		code, out := api.do(t, "PUT", "/api/v1/environments/fake", body)
		if msg, _ := out["error"].(string); code != 400 || !strings.Contains(msg, want) {
			t.Errorf("PUT %s: %d %q; want 400 saying %s", body, code, msg, want)
		}
	}
	if code, out := api.do(t, "PUT", "/api/v1/environments/fake", `{"created_at":"yesterday"}`); code != 200 {
		t.Errorf("PUT with a created_at that is not a date, which is ignored: %d %v", code, out)
	}
}

// A key twice in one object is refused: encoding/json keeps the last,
// where a proxy or a log in front of the server may read the first. At
// the top level keys name fields, which encoding/json matches without
// regard to case; in a map such as "env" keys are compared as they are.
func TestDecodeDuplicateKeys(t *testing.T) {
	for body, want := range map[string]string{
		`{"environment_id":"host","environment_id":"mine"}`: `"environment_id" appears twice`,
		`{"environment_id":"host","Environment_ID":"mine"}`: `"Environment_ID" appears twice`,
		`{"id":"a","ıd":"b"}`:                               ``, // not a case variant: an unknown field
		`{"id":"a","İD":"b"}`:                               ``,
		`{"command":["a"],"cols":80,"command":["b"]}`:       `"command" appears twice`,
		`{"env":{"A":"1","A":"2"}}`:                         `"A" appears twice`,
		`{"env":{"A":"1","B":{"x":1}},"env":{}}`:            ``, // a type error comes first
	} {
		var v sessionRequest
		err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), &v)
		if want == "" {
			if err == nil || strings.Contains(err.Error(), "appears twice") {
				t.Errorf("%s: %v; want another error", body, err)
			}
			continue
		}
		if !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an invalid argument saying %s", body, err, want)
		}
	}
	for _, body := range []string{
		`{"env":{"PATH":"/bin","Path":"x","path":"y"}}`,
		`{"command":["a","a"],"env":{"A":"1"},"unset_env":["A","A"]}`,
		`{"id":"a","env":{"id":"b"}}`,
	} {
		var v sessionRequest
		if err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), &v); err != nil {
			t.Errorf("%s: %v; want it decoded", body, err)
		}
	}
}
