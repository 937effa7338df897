package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// GuardOptions configure Guard.
type GuardOptions struct {
	// AllowedHosts lists the host names, besides IP addresses, "localhost"
	// and names ending in ".localhost", that requests may name in their
	// Host header: path.Match patterns matched against the lower-cased
	// name without its port, such as "ptyhost.example.com" or
	// "*.example.com". A server behind a proxy that checks Host itself
	// may pass "*" to accept every name.
	AllowedHosts []string
	// AllowedOrigins lists the browser origins, besides the server's own,
	// whose pages may call the server: path.Match patterns matched against
	// the Origin's host[:port] ("app.example.com", "*.example.com:8443"),
	// or, when a pattern contains "://", against scheme://host[:port].
	AllowedOrigins []string
}

// Validate reports the first pattern that is not valid.
func (o GuardOptions) Validate() error {
	for _, p := range o.AllowedHosts {
		if p == "" {
			return errors.New("allowed host: empty pattern")
		}
		if strings.ContainsAny(p, ":/") || strings.ContainsFunc(p, badPatternRune) {
			return fmt.Errorf("allowed host %q: want a host name pattern such as ptyhost.example.com or *.example.com, without scheme, port or spaces", p)
		}
		if err := asciiPattern(p); err != nil {
			return fmt.Errorf("allowed host %q: %v", p, err)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("allowed host %q: %v", p, err)
		}
	}
	for _, p := range o.AllowedOrigins {
		if p == "" {
			return errors.New("allowed origin: empty pattern")
		}
		if strings.ContainsFunc(p, badPatternRune) {
			return fmt.Errorf("allowed origin %q: want a host[:port] pattern such as *.example.com, without spaces", p)
		}
		if err := asciiPattern(p); err != nil {
			return fmt.Errorf("allowed origin %q: %v", p, err)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("allowed origin %q: %v", p, err)
		}
	}
	return nil
}

// asciiPattern refuses a pattern with non-ASCII letters: browsers and
// HTTP clients send an internationalized name in its ASCII (punycode)
// form, in Host and in Origin alike, so such a pattern never matches.
func asciiPattern(p string) error {
	if strings.ContainsFunc(p, func(r rune) bool { return r > unicode.MaxASCII }) {
		return errors.New("host names arrive in their ASCII form: write an internationalized name as its punycode (xn--…), as `idn2` or a browser's address bar shows it")
	}
	return nil
}

// badPatternRune reports the runes no host or origin can hold, which a
// pattern holding them would therefore never match.
func badPatternRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// AnyName returns the first of AllowedHosts and AllowedOrigins that lets
// web pages of anyone's through, such as "*" or "*.com": one that matches
// a name under a public top-level domain that no operator chose. Without
// a token such a pattern lets any page the server's user opens reach the
// API (by DNS rebinding, or from its own origin). It is a check for the
// likely mistakes, not a proof: a pattern over one registrable domain
// (*.example.com) trusts whoever controls that domain.
func (o GuardOptions) AnyName() (string, bool) {
	var strangers []string
	for _, tld := range []string{"invalid", "com", "net", "org", "io", "dev", "app", "co", "xyz", "info", "me"} {
		name := "rebinding-check.attacker." + tld
		strangers = append(strangers, name, name+":443", "https://"+name, "http://"+name+":80")
	}
	for _, p := range append(slices.Clone(o.AllowedHosts), o.AllowedOrigins...) {
		for _, stranger := range strangers {
			if ok, _ := path.Match(strings.ToLower(p), stranger); ok {
				return p, true
			}
		}
	}
	return "", false
}

// Guard refuses the requests a web page could make a browser send to the
// server against its user's will, and passes the others to next. In order:
//
//   - A Host header that names neither an IP address, "localhost", a name
//     under ".localhost" nor one of AllowedHosts is 421: DNS rebinding
//     points an attacker's name at the server, and only a name tells it
//     apart.
//   - An Origin header that names another origin than the request's Host
//     (scheme's default port assumed when a port is absent) and matches
//     none of AllowedOrigins is 403; so is "Sec-Fetch-Site: cross-site" or
//     "same-site" unless the Origin is allowed. Requests with neither
//     header (command-line clients) pass.
//   - POST, PUT and PATCH without "Content-Type: application/json" are
//     415, whether or not they have a body: a page may send a form or
//     text/plain anywhere without asking, but not JSON.
//
// Each refusal is a JSON error body. Guard checks no token: see
// RequireToken. NewHandler applies Guard itself; wrap other handlers
// served beside it (metrics, say) with the same options.
func Guard(next http.Handler, opts GuardOptions) http.Handler {
	g := &guard{hosts: lowerAll(opts.AllowedHosts), origins: lowerAll(opts.AllowedOrigins)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, msg := g.check(r); code != 0 {
			writeError(w, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type guard struct {
	hosts, origins []string
}

// check returns the status and message refusing r, or 0.
func (g *guard) check(r *http.Request) (int, string) {
	if !g.hostAllowed(r.Host) {
		if r.Host == "" {
			return http.StatusMisdirectedRequest, "the request has no Host header"
		}
		return http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not served here: this server answers to IP addresses, localhost and its allowed hosts", r.Host)
	}
	if msg := g.checkOrigin(r); msg != "" {
		return http.StatusForbidden, msg
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if msg := checkJSONContentType(r.Header.Get("Content-Type")); msg != "" {
			return http.StatusUnsupportedMediaType, msg
		}
	}
	return 0, ""
}

// hostAllowed reports whether the Host header host[:port] names this
// server.
func (g *guard) hostAllowed(hostport string) bool {
	name := strings.TrimSuffix(strings.ToLower(hostOnly(hostport)), ".")
	if name == "" {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	return matchAny(g.hosts, name)
}

// checkOrigin returns why r's Origin and Sec-Fetch-Site headers refuse
// it, or "".
func (g *guard) checkOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	site := strings.ToLower(strings.TrimSpace(r.Header.Get("Sec-Fetch-Site")))
	crossSite := site == "cross-site" || site == "same-site"
	if origin == "" {
		if crossSite {
			return fmt.Sprintf("a request from another site (Sec-Fetch-Site: %s) without an allowed Origin is refused", site)
		}
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Sprintf("origin %q is refused: only pages of the server's own origin or an allowed one may call it", origin)
	}
	if g.originAllowed(u) {
		return ""
	}
	if !sameOrigin(u, r) {
		return fmt.Sprintf("origin %q is refused: it is not this server's origin nor an allowed one", origin)
	}
	if crossSite {
		return fmt.Sprintf("a request from another site (Sec-Fetch-Site: %s) is refused", site)
	}
	return ""
}

func (g *guard) originAllowed(u *url.URL) bool {
	host := strings.ToLower(u.Host)
	full := strings.ToLower(u.Scheme) + "://" + host
	for _, p := range g.origins {
		target := host
		if strings.Contains(p, "://") {
			target = full
		}
		if ok, _ := path.Match(p, target); ok {
			return true
		}
	}
	return false
}

// sameOrigin reports whether origin u is the origin r was sent to: the
// same host name and port, a port that is absent taken as the origin
// scheme's default (browsers leave default ports out of Host, and a proxy
// that terminates TLS forwards Host unchanged). A plain-http page may not
// call the server over TLS.
func sameOrigin(u *url.URL, r *http.Request) bool {
	if r.TLS != nil && u.Scheme != "https" {
		return false
	}
	def := "80"
	if u.Scheme == "https" {
		def = "443"
	}
	h := &url.URL{Host: r.Host}
	return strings.EqualFold(u.Hostname(), h.Hostname()) && orDefault(u.Port(), def) == orDefault(h.Port(), def)
}

// checkJSONContentType returns why ct is not application/json, or "".
func checkJSONContentType(ct string) string {
	const want = `send "Content-Type: application/json" with a JSON body`
	if ct == "" {
		return "the request has no Content-Type: " + want
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type %q is not accepted: %s", ct, want)
	}
	return ""
}

// limitBody bounds every request body to maxBodyBytes: reading past it
// fails with an *http.MaxBytesError, which statusOf maps to 413.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// bodyTooLargeError is a body past limitBody's bound: one message of our
// own (http.MaxBytesError's, "http: request body too large", is not
// repeated), still an *http.MaxBytesError to errors.As, which statusOf
// maps to 413.
type bodyTooLargeError struct{ err *http.MaxBytesError }

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("request body is larger than the limit of %d bytes", e.err.Limit)
}

func (e *bodyTooLargeError) Unwrap() error { return e.err }

// readBodyError is the error of reading a request's body that failed
// with err: a body too large (bodyTooLargeError), one that did not
// arrive in time (errBodyTimeout), or nil for any other failure.
func readBodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &bodyTooLargeError{tooLarge}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %v", errBodyTimeout, err)
	}
	return nil
}

// bodyReadTimeout bounds the time from the start of a request to the end
// of its body (at most maxBodyBytes); see bodyDeadline. A variable so that
// tests can shorten it.
var bodyReadTimeout = 30 * time.Second

// drainTimeout bounds the reading, after the handler, of the part of a
// body it left unread; see bodyDeadline. A variable so that tests can
// shorten it.
var drainTimeout = time.Second

// bodyDeadline bounds the time a request's body may take to arrive, so
// that a client that declares a body and sends it slowly, or not at all,
// holds no connection and goroutine open: until bodyReadTimeout after the
// request's start, and after the handler until drainTimeout from then at
// most, for net/http reads up to 256 KiB of a body the handler left unread
// (a refused request's, say) before it answers, to keep the connection.
// A read that runs out of time fails, and the connection is closed after
// the answer. Once the body has been read to its end, net/http lifts the
// deadline itself (the read it then starts in the background, to notice a
// client that goes away, has none), so a handler may work on past it.
//
// A request without a body, which every WebSocket upgrade is, is left
// alone, and so is every request of a server that has a ReadTimeout of
// its own, which bounds the body already. A ResponseWriter that cannot
// set a deadline (a recorder's, a proxy's) has no connection to bound.
func bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || hasReadTimeout(r) {
			next.ServeHTTP(w, r)
			return
		}
		end := time.Now().Add(bodyReadTimeout)
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(end); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		body := &deadlineBody{ReadCloser: r.Body}
		// A copy of r carries the wrapped body: net/http looks at its
		// own request's body, whose unread size tells it whether a drain
		// is worth it at all.
		r = r.WithContext(r.Context())
		r.Body = body
		next.ServeHTTP(w, r)
		if body.read.Load() {
			return
		}
		if drain := time.Now().Add(drainTimeout); drain.Before(end) {
			end = drain
		}
		// An error here leaves the deadline as it was, which bounds the
		// drain too.
		_ = rc.SetReadDeadline(end)
	})
}

// hasReadTimeout reports whether the server serving r bounds its reads
// with a ReadTimeout.
func hasReadTimeout(r *http.Request) bool {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	return srv != nil && srv.ReadTimeout > 0
}

// deadlineBody is a request body that notes when it has been read to its
// end, when bodyDeadline need not bound the drain after the handler.
type deadlineBody struct {
	io.ReadCloser
	// read is set once the body has been read to its end.
	read atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.read.Store(true)
	}
	return n, err
}

// hostOnly returns the host of host[:port] without brackets.
func hostOnly(hostport string) string {
	return (&url.URL{Host: hostport}).Hostname()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lowerAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.ToLower(p)
	}
	return out
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
