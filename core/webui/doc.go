// Package webui is the browser page ptyhost serves at GET /: a sessions
// list, a create form and an xterm.js terminal that attaches over the
// same REST API and WebSocket protocol as every other client
// (docs/protocol.md). It holds no secret and needs no token to load; the
// page asks for the token itself and sends it with each request.
//
// The page is plain ES modules, no framework and no bundler. Its sources,
// in src/, are embedded and served as written: editing them needs no
// build. dist/vendor/ holds xterm.js and its addons, copied from the
// pinned npm packages (package.json, package-lock.json) by
//
//	make web    # cd core/webui && npm ci && node build.mjs
//
// and committed, so that building ptyhost needs only Go; node_modules/ is
// not. Run make web after changing the pins.
//
// Handler serves src/index.html at /, the rest of src/ under /assets/ and
// dist/vendor/ under /assets/vendor/, with a strict
// Content-Security-Policy (scripts and connections only from the page's
// own origin, no framing), no-cache revalidated by an ETag of each file's
// content, and the page's other security headers. The files are read once,
// when Handler is called; the handler is safe for concurrent use.
//
// api.Options.Page mounts it (GET / and GET /assets/...).
package webui
