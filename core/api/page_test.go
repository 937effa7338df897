package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// stubPage stands for core/webui's handler: it answers every request it
// gets with the path it got.
var stubPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	io.WriteString(w, "page "+r.URL.Path)
})

// send sends a request without following redirects and returns the
// status, the Content-Type, the Location and the body.
func (a *apiHarness) send(t *testing.T, method, path string, hdr ...string) (code int, ctype, location, body string) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), string(b)
}

func TestPageRoutes(t *testing.T) {
	api := newAPI(t, Options{Token: "tok", AllowedHosts: []string{"term.example.test"}, Page: stubPage}, nil)
	port := api.port(t)
	for _, tt := range []struct {
		name, method, path string
		hdr                []string
		want               int
		page               bool   // answered by the page
		location           string // of a redirect
	}{
		{"the page, without a token", "GET", "/", nil, 200, true, ""},
		{"an asset", "GET", "/assets/app.js", nil, 200, true, ""},
		{"HEAD of the page", "HEAD", "/", nil, 200, true, ""},
		{"a link from another site", "GET", "/", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}, 200, true, ""},
		{"an asset fetched by another site", "GET", "/assets/app.js", []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, 200, true, ""},
		{"an allowed host", "GET", "/", []string{"Host", "term.example.test:" + port}, 200, true, ""},
		{"DNS rebinding", "GET", "/", []string{"Host", "evil.example:" + port}, 421, false, ""},
		{"DNS rebinding, an asset", "GET", "/assets/app.js", []string{"Host", "evil.example"}, 421, false, ""},
		{"the API from another site", "GET", "/api/v1/sessions", []string{"Sec-Fetch-Site", "cross-site", "Authorization", "Bearer tok"}, 403, false, ""},
		{"the API without a token", "GET", "/api/v1/sessions", nil, 401, false, ""},
		{"POST to the page", "POST", "/", []string{"Content-Type", "application/json"}, 405, false, ""},
		{"DELETE of an asset", "DELETE", "/assets/app.js", nil, 405, false, ""},
		{"POST to the page from another site", "POST", "/", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403, false, ""},
		{"out of the assets to the API", "GET", "/assets/../api/v1/sessions", []string{"Sec-Fetch-Site", "cross-site"}, 403, false, ""},
		// The mux redirects an unclean path to the clean one (the API
		// itself then asks for the token), with or without the page.
		{"out of the assets, same site", "GET", "/assets/../api/v1/sessions", nil, 307, false, "/api/v1/sessions"},
		{"escaped dots", "GET", "/assets/%2e%2e/api/v1/sessions", nil, 400, false, ""},
		{"escaped dots from another site", "GET", "/assets/%2e%2e/api/v1/sessions", []string{"Sec-Fetch-Site", "cross-site"}, 400, false, ""},
		{"escaped slash and dots", "GET", "/assets/..%2fapi/v1/sessions", nil, 400, false, ""},
		{"an unclean page path", "GET", "/assets/x/../app.js", []string{"Sec-Fetch-Site", "cross-site"}, 400, false, ""},
		{"another path", "GET", "/index.html", nil, 404, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, location, body := api.send(t, tt.method, tt.path, tt.hdr...)
			if code != tt.want {
				t.Fatalf("status %d %q, want %d", code, body, tt.want)
			}
			if tt.page {
				if tt.method == "GET" && body != "page "+tt.path {
					t.Errorf("body %q, want the page's", body)
				}
				return
			}
			if strings.HasPrefix(body, "page ") {
				t.Errorf("the page answered: %q", body)
			}
			if tt.location != "" {
				if location != tt.location {
					t.Errorf("Location %q, want %q", location, tt.location)
				}
				return
			}
			if ctype != "application/json" || !strings.Contains(body, `"error"`) {
				t.Errorf("answer %s %q, want a JSON error", ctype, body)
			}
		})
	}
}

func TestPageAbsent(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	for _, path := range []string{"/", "/assets/app.js"} {
		if code, ctype, _, body := api.send(t, "GET", path); code != 404 || ctype != "application/json" {
			t.Errorf("GET %s without a page: %d %s %q, want a JSON 404", path, code, ctype, body)
		}
	}
}
