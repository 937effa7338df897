package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// page holds the page's own files, src/, as they are written (served
// without a build step), and dist/vendor/, the xterm.js files build.mjs
// copies from the pinned npm packages.
//
//go:embed all:src all:dist
var page embed.FS

// urlPath returns the URL path that serves the embedded file name, or ""
// for none: src/index.html at /, the rest of src/ under /assets/, and
// dist/vendor/ under /assets/vendor/.
func urlPath(name string) string {
	switch {
	case name == "src/index.html":
		return "/"
	case strings.HasPrefix(name, "src/vendor/"):
		// Would shadow the vendor files; build.mjs refuses it too.
		return ""
	case strings.HasPrefix(name, "src/"):
		return "/assets/" + strings.TrimPrefix(name, "src/")
	case strings.HasPrefix(name, "dist/vendor/"):
		return "/assets/" + strings.TrimPrefix(name, "dist/")
	}
	return ""
}

// ContentSecurityPolicy is the policy every answer of Handler carries.
// Scripts come only from the page's origin (no inline script, no eval:
// xterm.js needs neither), and so do connections (fetch and WebSocket: a
// same-origin ws:// URL is 'self'). style-src allows 'unsafe-inline'
// because xterm.js builds its cell and theme styles in <style> elements at
// run time. img-src allows data: URLs for xterm's inline images.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// contentTypes maps the extensions of the page's files to their types, rather than
// the system's MIME table, which may not know .mjs (a module script served
// with another type does not run).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
}

type file struct {
	data        []byte
	etag        string
	contentType string
}

// Handler returns the handler of the page: GET or HEAD of / (index.html)
// and of /assets/NAME (src/NAME, and dist/vendor/ under
// /assets/vendor/). Anything else is 404, or 405 for another method, with
// a JSON error as the API answers.
func Handler() http.Handler {
	files, err := load(page)
	if err != nil {
		// The files are embedded at build time: a read error here is a
		// broken build, not a condition to handle.
		panic("webui: reading the embedded page: " + err.Error())
	}
	return &handler{files: files}
}

// load reads every file of fsys that urlPath serves into memory, keyed by
// that path.
func load(fsys fs.FS) (map[string]file, error) {
	files := map[string]file{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		urlPath := urlPath(name)
		if urlPath == "" {
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		files[urlPath] = file{
			data:        data,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			contentType: ct,
		}
		return nil
	})
	return files, err
}

type handler struct {
	files map[string]file
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	// A page of another site that opens this one (window.open) keeps no
	// handle on it: it cannot point the page at other sessions.
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return
	}
	// Only the exact paths of the page's files: no directory listings,
	// and nothing outside (a path with .. matches no key).
	f, ok := h.files[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such page file: "+r.URL.Path)
		return
	}
	// no-cache: the browser keeps the file but asks each time; the ETag
	// makes the answer a 304 until a new binary serves new files, so an
	// upgraded server never runs with a stale page.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	hdr.Set("Content-Type", f.contentType)
	// ServeContent answers If-None-Match (304), HEAD and ranges. A zero
	// time sends no Last-Modified: the ETag alone decides.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
