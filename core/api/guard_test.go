package api

import (
	"crypto/sha256"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// port is the port of api's test server.
func (a *apiHarness) port(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestGuardREST sends what a browser page could make a browser send, and
// what a command-line client sends, through NewHandler.
func TestGuardREST(t *testing.T) {
	api := newAPI(t, Options{
		AllowedHosts:   []string{"*.Example.test"},
		AllowedOrigins: []string{"app.example.test", "https://*.trusted.test"},
	}, nil)
	port := api.port(t)
	self := "127.0.0.1:" + port
	create := `{"environment_id":"fake","command":["/bin/sh","-c","id > /tmp/pwned"]}`
	tests := []struct {
		name               string
		method, path, body string
		hdr                []string
		want               int
	}{
		// Host: DNS rebinding needs a name; IP literals and localhost
		// cannot be rebound.
		{"loopback address", "GET", "/api/v1/sessions", "", nil, 200},
		{"localhost", "GET", "/api/v1/sessions", "", []string{"Host", "localhost:" + port}, 200},
		{"localhost with a trailing dot", "GET", "/api/v1/sessions", "", []string{"Host", "LocalHost.:" + port}, 200},
		{"name under localhost", "GET", "/api/v1/sessions", "", []string{"Host", "dev.localhost:" + port}, 200},
		{"IPv6 loopback", "GET", "/api/v1/sessions", "", []string{"Host", "[::1]:" + port}, 200},
		{"other address", "GET", "/api/v1/sessions", "", []string{"Host", "192.0.2.7"}, 200},
		{"allowed host", "GET", "/api/v1/sessions", "", []string{"Host", "term.example.TEST:" + port}, 200},
		{"rebound name", "GET", "/api/v1/sessions", "", []string{"Host", "evil.example:" + port}, 421},
		{"rebound name creating", "POST", "/api/v1/sessions", create, []string{"Host", "evil.example:" + port}, 421},
		{"rebound name, same origin", "POST", "/api/v1/sessions", create, []string{"Host", "evil.example:" + port, "Origin", "http://evil.example:" + port, "Sec-Fetch-Site", "same-origin"}, 421},
		{"rebound name on healthz", "GET", "/healthz", "", []string{"Host", "evil.example:" + port}, 421},
		{"address-like name", "GET", "/api/v1/sessions", "", []string{"Host", "127.0.0.1.evil.example:" + port}, 421},
		{"localhost-like name", "GET", "/api/v1/sessions", "", []string{"Host", "localhost.evil.example:" + port}, 421},
		{"parent of the allowed pattern", "GET", "/api/v1/sessions", "", []string{"Host", "example.test:" + port}, 421},

		// Origin and Sec-Fetch-Site.
		{"same-origin page", "POST", "/api/v1/sessions", create, []string{"Origin", "http://" + self, "Sec-Fetch-Site", "same-origin"}, 201},
		{"same-origin page, no fetch metadata", "GET", "/api/v1/sessions", "", []string{"Origin", "http://" + self}, 200},
		{"cross-site page", "POST", "/api/v1/sessions", create, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site origin alone", "GET", "/api/v1/sessions", "", []string{"Origin", "https://evil.example"}, 403},
		{"another port of this host", "POST", "/api/v1/sessions", create, []string{"Origin", "http://127.0.0.1:9", "Sec-Fetch-Site", "same-site"}, 403},
		{"another name of this host", "GET", "/api/v1/sessions", "", []string{"Origin", "http://localhost:" + port}, 403},
		{"opaque origin", "POST", "/api/v1/sessions", create, []string{"Origin", "null"}, 403},
		{"not a web origin", "GET", "/api/v1/sessions", "", []string{"Origin", "file:///tmp/x.html"}, 403},
		{"cross-site fetch without origin", "GET", "/api/v1/sessions", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site fetch without origin", "GET", "/api/v1/sessions", "", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"same origin but cross-site", "GET", "/api/v1/sessions", "", []string{"Origin", "http://" + self, "Sec-Fetch-Site", "cross-site"}, 403},
		{"user navigation", "GET", "/api/v1/sessions", "", []string{"Sec-Fetch-Site", "none"}, 200},
		{"allowed origin", "POST", "/api/v1/sessions", create, []string{"Origin", "https://app.example.test", "Sec-Fetch-Site", "cross-site"}, 201},
		{"allowed origin with scheme", "GET", "/api/v1/sessions", "", []string{"Origin", "https://x.trusted.test", "Sec-Fetch-Site", "cross-site"}, 200},
		{"allowed origin's other scheme", "GET", "/api/v1/sessions", "", []string{"Origin", "http://x.trusted.test", "Sec-Fetch-Site", "cross-site"}, 403},
		{"allowed origin's other port", "GET", "/api/v1/sessions", "", []string{"Origin", "https://app.example.test:8443"}, 403},
		{"default port, http", "GET", "/api/v1/sessions", "", []string{"Host", "term.example.test", "Origin", "http://term.example.test"}, 200},
		{"default port, behind a TLS proxy", "GET", "/api/v1/sessions", "", []string{"Host", "term.example.test", "Origin", "https://term.example.test"}, 200},
		{"explicit default port", "GET", "/api/v1/sessions", "", []string{"Host", "term.example.test:443", "Origin", "https://term.example.test"}, 200},
		{"port against default", "GET", "/api/v1/sessions", "", []string{"Host", "term.example.test:8080", "Origin", "http://term.example.test"}, 403},

		// Content type: a page may send these without a preflight.
		{"text/plain", "POST", "/api/v1/sessions", create, []string{"Content-Type", "text/plain"}, 415},
		{"text/plain, same origin", "POST", "/api/v1/sessions", create, []string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "http://" + self}, 415},
		{"form", "POST", "/api/v1/sessions", create, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"multipart", "POST", "/api/v1/sessions", create, []string{"Content-Type", "multipart/form-data; boundary=x"}, 415},
		{"no content type", "POST", "/api/v1/sessions", create, []string{"Content-Type", ""}, 415},
		{"JSON look-alike", "POST", "/api/v1/sessions", create, []string{"Content-Type", "application/json-seq"}, 415},
		{"malformed content type", "POST", "/api/v1/sessions", create, []string{"Content-Type", "application/json; ="}, 415},
		{"JSON with charset", "POST", "/api/v1/sessions", create, []string{"Content-Type", "application/json; charset=utf-8"}, 201},
		{"JSON in capitals", "POST", "/api/v1/sessions", create, []string{"Content-Type", "Application/JSON"}, 201},
		{"text/plain environment", "POST", "/api/v1/environments", `{"id":"e9","type":"FAKE"}`, []string{"Content-Type", "text/plain"}, 415},
		{"text/plain update", "PUT", "/api/v1/environments/fake", `{"name":"x"}`, []string{"Content-Type", "text/plain"}, 415},
		{"bodiless restart without JSON", "POST", "/api/v1/plugins/fake/restart", "", []string{"Content-Type", ""}, 415},
		{"bodiless restart with JSON", "POST", "/api/v1/plugins/nope/restart", "", nil, 404},
		// A plugin restart's body is checked before anything is done.
		{"plugin restart, body not JSON", "POST", "/api/v1/plugins/nope/restart", "not json", nil, 400},
		{"plugin restart, unknown field", "POST", "/api/v1/plugins/nope/restart", `{"x":1}`, nil, 400},
		{"plugin restart, {}", "POST", "/api/v1/plugins/nope/restart", `{}`, nil, 404},
		{"plugin restart, body over 1 MiB", "POST", "/api/v1/plugins/nope/restart", `{"x":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := api.env.Count()
			code, body := api.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if code != tt.want {
				t.Fatalf("status %d %v, want %d", code, body, tt.want)
			}
			if msg, _ := body["error"].(string); code >= 400 && msg == "" {
				t.Errorf("no error message: %v", body)
			}
			if spawned := api.env.Count() - before; code != 201 && spawned != 0 {
				t.Errorf("refused with %d, yet %d session(s) started", code, spawned)
			}
		})
	}
}

// TestGuardAttach: the WebSocket upgrade passes the same rules; a refused
// upgrade is never a client.
func TestGuardAttach(t *testing.T) {
	api := newAPI(t, Options{AllowedHosts: []string{"term.example.test"}, AllowedOrigins: []string{"app.example.test"}}, nil)
	api.create(t, "ws")
	port := api.port(t)
	for _, tt := range []struct {
		name   string
		host   string
		header http.Header
		want   int // 0: attached
	}{
		{"rebinding", "evil.example:" + port, http.Header{"Origin": {"http://evil.example:" + port}}, 421},
		{"cross-site origin", "", http.Header{"Origin": {"http://evil.example:" + port}}, 403},
		{"cross-site fetch", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"same-site page", "", http.Header{"Origin": {"http://localhost:" + port}, "Sec-Fetch-Site": {"same-site"}}, 403},
		{"command-line client", "", nil, 0},
		{"same-origin page", "", http.Header{"Origin": {"http://127.0.0.1:" + port}, "Sec-Fetch-Site": {"same-origin"}}, 0},
		{"allowed host and origin", "term.example.test:" + port, http.Header{"Origin": {"https://app.example.test"}, "Sec-Fetch-Site": {"cross-site"}}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			u := "ws" + strings.TrimPrefix(api.srv.URL, "http") + "/api/v1/sessions/ws/attach"
			c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{wsproto.Subprotocol}, HTTPHeader: tt.header, Host: tt.host})
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer c.CloseNow()
				if m, err := readMsg(t, c); err != nil || m.ctrl["type"] != "hello" {
					t.Fatalf("first message %+v, %v", m, err)
				}
				c.Close(websocket.StatusNormalClosure, "")
				eventually(t, "the client to leave", func() bool {
					rec, _ := api.m.GetSession(t.Context(), "ws")
					return rec.ActiveConnections == 0
				})
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("attached")
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("refusal %v, want status %d", resp, tt.want)
			}
			if rec, _ := api.m.GetSession(t.Context(), "ws"); rec.ActiveConnections != 0 {
				t.Errorf("a refused upgrade counts as a client: %+v", rec)
			}
		})
	}
}

// TestGuardAlone: Guard wraps handlers served beside the API (metrics).
func TestGuardAlone(t *testing.T) {
	h := Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), GuardOptions{})
	for _, tt := range []struct {
		name   string
		host   string
		tls    bool
		header map[string]string
		want   int
	}{
		{"loopback", "127.0.0.1:7420", false, nil, 200},
		{"rebound", "evil.example:7420", false, nil, 421},
		{"no host", "", false, nil, 421},
		{"cross-site", "127.0.0.1:7420", false, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"https page over TLS", "localhost", true, map[string]string{"Origin": "https://localhost"}, 200},
		{"http page over TLS", "localhost:443", true, map[string]string{"Origin": "http://localhost:443"}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if w.Code != 200 && w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("refusal is not JSON: %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestRequireToken(t *testing.T) {
	h := RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), "tok")
	for _, tt := range []struct {
		name, auth, query string
		want              int
	}{
		{"none", "", "", 401},
		{"bearer", "Bearer tok", "", 200},
		{"mixed case", "bEaReR tok", "", 200},
		{"extra spaces", "Bearer   tok", "", 200},
		{"bare", "tok", "", 401},
		{"other scheme", "Token tok", "", 401},
		{"query", "", "tok", 200},
		{"header wins over query", "Bearer nope", "tok", 401},
		{"prefix of the token", "Bearer to", "", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/metrics?access_token="+tt.query, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if w.Code == 401 && (w.Header().Get("WWW-Authenticate") == "" || strings.Contains(w.Body.String(), "tok\"")) {
				t.Errorf("401 without challenge or with the token: %v %s", w.Header(), w.Body)
			}
		})
	}
	if RequireToken(http.NotFoundHandler(), "") == nil {
		t.Error("no handler for an empty token")
	}
}

// TestRequireTokensLength: a token passes only when it is the very one,
// whatever the length of a wrong one; the comparison is of digests, so
// that its time does not depend on the length of the token (tokenMatches).
func TestRequireTokensLength(t *testing.T) {
	h := RequireTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Tokens{Token: "full-token", ReadToken: "read-token"})
	for _, tt := range []struct {
		name, token string
		get, post   int
	}{
		{"full", "full-token", 200, 200},
		{"read", "read-token", 200, 403},
		{"shorter", "full-toke", 401, 401},
		{"longer", "full-tokenn", 401, 401},
		{"same length", "full-tokem", 401, 401},
		{"read shorter", "read-toke", 401, 401},
		{"read longer", "read-tokenn", 401, 401},
		{"read same length", "read-tokem", 401, 401},
		{"much longer", strings.Repeat("full-token", 100), 401, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for method, want := range map[string]int{"GET": tt.get, "POST": tt.post} {
				r := httptest.NewRequest(method, "/api/v1/sessions", nil)
				r.Header.Set("Authorization", "Bearer "+tt.token)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != want {
					t.Errorf("%s: status %d %s, want %d", method, w.Code, w.Body, want)
				}
			}
		})
	}
	// Without a read-only token, neither an empty bearer token (whose
	// digest is the unset read-only token's) nor a wrong one passes.
	h = RequireTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Tokens{Token: "full-token"})
	for _, token := range []string{"", "x"} {
		r := httptest.NewRequest("GET", "/api/v1/sessions", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Errorf("token %q without a read-only token: %d, want 401", token, w.Code)
		}
	}
}

func TestTokenMatches(t *testing.T) {
	want := sha256.Sum256([]byte("s3cret"))
	for _, tt := range []struct {
		got  string
		want bool
	}{
		{"s3cret", true},
		{"", false},
		{"s3cre", false},
		{"s3crett", false},
		{"s3creT", false},
		{"S3CRET", false},
	} {
		if got := tokenMatches(tt.got, want); got != tt.want {
			t.Errorf("tokenMatches(%q) = %v, want %v", tt.got, got, tt.want)
		}
	}
}

func TestGuardOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts GuardOptions
		ok   bool
	}{
		{"empty", GuardOptions{}, true},
		{"patterns", GuardOptions{AllowedHosts: []string{"ptyhost.example.com", "*.example.com"}, AllowedOrigins: []string{"app.example.com:8443", "https://*.example.com"}}, true},
		{"host with port", GuardOptions{AllowedHosts: []string{"example.com:7420"}}, false},
		{"host with scheme", GuardOptions{AllowedHosts: []string{"https://example.com"}}, false},
		{"bad host pattern", GuardOptions{AllowedHosts: []string{"[a-"}}, false},
		{"empty host", GuardOptions{AllowedHosts: []string{""}}, false},
		{"bad origin pattern", GuardOptions{AllowedOrigins: []string{"[x"}}, false},
		{"host with a space", GuardOptions{AllowedHosts: []string{"a b"}}, false},
		{"origin with a tab", GuardOptions{AllowedOrigins: []string{"a\tb"}}, false},
		// Host and Origin carry an IDN as punycode: these never match.
		{"non-ASCII host", GuardOptions{AllowedHosts: []string{"ÄÖ.com"}}, false},
		{"non-ASCII origin", GuardOptions{AllowedOrigins: []string{"https://bücher.example"}}, false},
		{"punycode host", GuardOptions{AllowedHosts: []string{"xn--4ca0bs.com"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// AnyName finds the patterns that let any name through, and only those.
func TestGuardOptionsAnyName(t *testing.T) {
	for _, tt := range []struct {
		opts GuardOptions
		want string
	}{
		{GuardOptions{AllowedHosts: []string{"ptyhost.example.com", "*.example.com"}, AllowedOrigins: []string{"app.example.com:8443", "https://*.example.com"}}, ""},
		{GuardOptions{AllowedHosts: []string{"*"}}, "*"},
		{GuardOptions{AllowedHosts: []string{"*.*"}}, "*.*"},
		{GuardOptions{AllowedHosts: []string{"*.COM"}}, "*.COM"},
		{GuardOptions{AllowedHosts: []string{"*.lan", "*.home.arpa"}}, ""},
		{GuardOptions{AllowedOrigins: []string{"https://*.io"}}, "https://*.io"},
		{GuardOptions{AllowedOrigins: []string{"*:*"}}, "*:*"},
		{GuardOptions{AllowedOrigins: []string{"https://*"}}, "https://*"},
		{GuardOptions{AllowedOrigins: []string{"http://*"}}, "http://*"},
	} {
		if got, _ := tt.opts.AnyName(); got != tt.want {
			t.Errorf("AnyName(%+v) = %q, want %q", tt.opts, got, tt.want)
		}
	}
}
