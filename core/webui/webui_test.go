package webui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wantSecurityHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		// The opener of a page of another site loses its handle.
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestIndex(t *testing.T) {
	h := Handler()
	rec := get(t, h, http.MethodGet, "/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200; body %s", rec.Code, rec.Body)
	}
	wantSecurityHeaders(t, rec)
	for k, v := range map[string]string{
		"Content-Type":  "text/html; charset=utf-8",
		"Cache-Control": "no-cache",
	} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if rec.Header().Get("ETag") == "" {
		t.Error("GET / has no ETag: revalidation would send the whole page")
	}
	if !strings.Contains(rec.Body.String(), `<script type="module" src="assets/app.mjs"></script>`) {
		t.Errorf("GET / does not load assets/app.mjs:\n%s", rec.Body)
	}
}

func TestEveryPageFileServed(t *testing.T) {
	h := Handler()
	n := 0
	err := fs.WalkDir(page, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		target := urlPath(name)
		if target == "" {
			t.Errorf("%s is embedded but served at no path", name)
			return nil
		}
		n++
		want, err := fs.ReadFile(page, name)
		if err != nil {
			return err
		}
		rec := get(t, h, http.MethodGet, target, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", target, rec.Code)
			return nil
		}
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("GET %s: body differs from %s", target, name)
		}
		if ct := rec.Header().Get("Content-Type"); ct == "" || ct == "application/octet-stream" {
			t.Errorf("GET %s: Content-Type %q: add its extension to contentTypes", target, ct)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", target, cc)
		}
		wantSecurityHeaders(t, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("the page has %d files; the page or its vendor files are missing (make web builds dist/vendor)", n)
	}
}

func TestModuleContentType(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/assets/app.mjs", "/assets/vendor/xterm.mjs", "/assets/vendor/addon-webgl.mjs"} {
		rec := get(t, h, http.MethodGet, target, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", target, rec.Code)
		}
		// A module script with another type (or none, with nosniff) does
		// not run.
		if ct := rec.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, want text/javascript; charset=utf-8", target, ct)
		}
	}
	rec := get(t, h, http.MethodGet, "/assets/style.css", nil)
	if ct := rec.Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("GET /assets/style.css: Content-Type %q, want text/css; charset=utf-8", ct)
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, target := range []string{
		"/assets/nope.mjs",
		"/assets/",
		"/assets/vendor/",
		"/assets/vendor",
		"/index.html",
		"/assets/index.html",
		"/assets/../src/index.html",
		"/src/app.mjs",
		"/dist/vendor/xterm.mjs",
		"/assets/vendor/LICENSE",
		"/assets/vendor/xterm.mjs.map",
		"/dist/assets/app.mjs",
	} {
		rec := get(t, h, http.MethodGet, target, nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, rec.Code)
			continue
		}
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
			t.Errorf("GET %s: body %q, want a JSON error", target, rec.Body)
		}
		wantSecurityHeaders(t, rec)
	}
}

func TestMethods(t *testing.T) {
	h := Handler()
	rec := get(t, h, http.MethodHead, "/assets/app.mjs", nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /assets/app.mjs = %d with %d bytes, want 200 and no body", rec.Code, rec.Body.Len())
	}
	rec = get(t, h, http.MethodPost, "/", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q; want 405 with Allow: GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/assets/app.mjs", nil)
	etag := first.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q, want a strong quoted tag", etag)
	}
	if other := get(t, h, http.MethodGet, "/assets/api.mjs", nil).Header().Get("ETag"); other == etag {
		t.Errorf("app.mjs and api.mjs share the ETag %s: it must follow the content", etag)
	}
	rec := get(t, h, http.MethodGet, "/assets/app.mjs", http.Header{"If-None-Match": {etag}})
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("GET with If-None-Match: its ETag = %d with %d bytes, want 304 and no body", rec.Code, rec.Body.Len())
	}
	if rec.Header().Get("ETag") != etag {
		t.Errorf("304's ETag = %q, want %q", rec.Header().Get("ETag"), etag)
	}
	wantSecurityHeaders(t, rec)
	rec = get(t, h, http.MethodGet, "/assets/app.mjs", http.Header{"If-None-Match": {`"stale"`}})
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), first.Body.Bytes()) {
		t.Errorf("GET with a stale If-None-Match = %d, want 200 with the file", rec.Code)
	}
}

// TestReferencesResolve checks that every file the page names — in
// index.html and in the modules' relative imports — is served, and that
// the page has no inline script or event handler, which the CSP blocks.
func TestReferencesResolve(t *testing.T) {
	h := Handler()
	index, err := fs.ReadFile(page, "src/index.html")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"#:]+)"`).FindAllSubmatch(index, -1) {
		targets["/"+string(m[1])] = "index.html"
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).Match(index) {
		t.Error("index.html has an inline script: the CSP (script-src 'self') blocks it")
	}
	if m := regexp.MustCompile(`\son[a-z]+=`).Find(index); m != nil {
		t.Errorf("index.html has an inline event handler (%s): the CSP blocks it", m)
	}
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*?from\s*'(\.[^']+)'|^\s*import\s*'(\.[^']+)'`)
	err = fs.WalkDir(page, "src", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".mjs") {
			return err
		}
		data, err := fs.ReadFile(page, name)
		if err != nil {
			return err
		}
		dir := path.Dir(urlPath(name))
		for _, m := range importRE.FindAllSubmatch(data, -1) {
			spec := string(m[1]) + string(m[2])
			targets[path.Clean(dir+"/"+spec)] = name
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) < 10 {
		t.Fatalf("found only %d references; the patterns no longer match the page", len(targets))
	}
	for target, from := range targets {
		if rec := get(t, h, http.MethodGet, target, nil); rec.Code != http.StatusOK {
			t.Errorf("%s names %s, which answers %d", from, target, rec.Code)
		}
	}
	// The vendor modules have no imports of their own (build.mjs fails on
	// a bare one); app.mjs reaches every module through the imports above.
	if _, ok := targets["/assets/vendor/xterm.mjs"]; !ok {
		t.Error("no module imports ./vendor/xterm.mjs")
	}
}

// TestTokenFieldNotForPasswordManagers: the token is a bearer secret the
// page keeps for the tab (sessionStorage), not a password for the
// browser's password manager to keep and sync. Its field is the token
// form's only input, autocomplete off, and nothing in the page names a
// credential to autocomplete (a hidden username beside a current-password
// field made it a login form to save).
func TestTokenFieldNotForPasswordManagers(t *testing.T) {
	index, err := fs.ReadFile(page, "src/index.html")
	if err != nil {
		t.Fatal(err)
	}
	form := regexp.MustCompile(`(?s)<form id="token-form"[^>]*>.*?</form>`).Find(index)
	if form == nil {
		t.Fatal(`index.html has no <form id="token-form">`)
	}
	inputs := regexp.MustCompile(`<input\b[^>]*>`).FindAll(form, -1)
	if len(inputs) != 1 || !bytes.Contains(inputs[0], []byte(`id="token-input"`)) {
		t.Fatalf("the token form's inputs are %q, want the token's field alone", inputs)
	}
	if !bytes.Contains(inputs[0], []byte(`autocomplete="off"`)) {
		t.Errorf("the token's field is %s, want autocomplete=\"off\"", inputs[0])
	}
	for _, m := range regexp.MustCompile(`autocomplete="([^"]*)"`).FindAllSubmatch(index, -1) {
		if v := string(m[1]); v != "off" {
			t.Errorf("index.html has autocomplete=%q: the page autocompletes nothing, a credential least of all", v)
		}
	}
}
