package api

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// withPage puts the browser page (Options.Page) in front of api: GET and
// HEAD of / and /assets/... go to page after Guard's Host check alone;
// every other request, including an unclean path such as
// /assets/../api/v1/sessions, goes to api and its full Guard (whose mux
// redirects it to the clean path); one the mux takes for the page's but
// whose decoded path is unclean (/assets/%2e%2e/...) is 400.
//
// The page skips Guard's Origin and Sec-Fetch-Site checks so that a link
// from another site may open it: it carries no secret (it asks for the
// token itself), a GET of it changes nothing, and the page handler
// forbids framing (frame-ancestors 'none'), so another site gains nothing
// by loading it. What the page then calls (/api/...) is same-origin and
// passes the full Guard. The Host check stays: DNS rebinding must not
// serve the page under an attacker's name, whose origin would then reach
// the API as "same-origin".
func withPage(api, page http.Handler, opts GuardOptions) http.Handler {
	// The page's routes, matched as NewHandler's mux matches them, so
	// that a request is the page's here exactly when it would be there.
	routes := http.NewServeMux()
	routes.Handle("GET /{$}", page)
	routes.Handle("GET /assets/", page)
	hosts := &guard{hosts: lowerAll(opts.AllowedHosts)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := routes.Handler(r); pattern == "" {
			api.ServeHTTP(w, r)
			return
		}
		// Guard's check of a GET that carries no browser header is its
		// Host check alone.
		if code, msg := hosts.check(&http.Request{Method: http.MethodGet, Host: r.Host, Header: http.Header{}}); code != 0 {
			writeError(w, code, msg)
			return
		}
		// The mux matches the escaped path, so /assets/%2e%2e/x matches
		// /assets/ with the path /assets/../x: the page gets clean
		// paths only.
		if !isClean(r.URL.Path) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q has . or .. segments: ask for the page's files by their own paths", r.URL.Path))
			return
		}
		routes.ServeHTTP(w, r)
	})
}

// isClean reports whether p is its own path.Clean, but for a trailing
// slash.
func isClean(p string) bool {
	c := path.Clean(p)
	return c == p || c+"/" == p && !strings.HasSuffix(c, "/")
}
