package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// The bearer tokens: where a request carries one, and what each allows.

// RequireToken passes to next only the requests that carry token, as
// "Authorization: Bearer <token>" (the scheme in any case) or, when there
// is no Authorization header, as a WebSocket upgrade's token subprotocol
// (wsproto.TokenSubprotocol) or the query parameter access_token; others
// are 401 with a JSON error. The comparison takes constant time, and the
// token appears in no message. An empty token requires nothing.
func RequireToken(next http.Handler, token string) http.Handler {
	return RequireTokens(next, Tokens{Token: token})
}

// Tokens are the bearer tokens RequireTokens accepts.
type Tokens struct {
	// Token grants every request.
	Token string
	// ReadToken, when set, grants only what changes nothing: GET and HEAD
	// requests (listing and reading environments and sessions) and
	// attaching read-only (mode=read; the attach endpoint refuses a
	// write-mode attach with it, 403). Any other request carrying it is
	// 403. It must differ from Token, and counts only when Token is set.
	ReadToken string
}

// RequireTokens is RequireToken with a read-only token besides the full
// one: a request that carries t.Token passes; one that carries
// t.ReadToken passes when it is a GET or HEAD, marked so that the attach
// endpoint lets it attach read-only only, and is 403 otherwise; any other
// is 401. Both comparisons take constant time and always run, and neither
// token appears in any message. An empty t.Token requires nothing.
func RequireTokens(next http.Handler, t Tokens) http.Handler {
	if t.Token == "" {
		return next
	}
	want, wantRead := sha256.Sum256([]byte(t.Token)), sha256.Sum256([]byte(t.ReadToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, msg := requestToken(r)
		if msg != "" {
			unauthorized(w, msg)
			return
		}
		full := tokenMatches(got, want)
		read := tokenMatches(got, wantRead) && t.ReadToken != ""
		switch {
		case full:
			next.ServeHTTP(w, r)
		case !read:
			unauthorized(w, "unauthorized: wrong token")
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: the read-only token may list, read and attach with %s=%s only; %s needs the full token", wsproto.ModeParam, wsproto.ModeRead, r.Method))
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readScopeKey{}, true)))
		}
	})
}

// RequireFullToken is RequireTokens for a handler that the read-only
// token may not use at all, whatever the method (the server's /metrics):
// a request that carries t.ReadToken is 403, as a POST with it is to the
// API; the full token passes and any other request is 401.
func RequireFullToken(next http.Handler, t Tokens) http.Handler {
	return RequireTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readScope(r) {
			writeError(w, http.StatusForbidden, "forbidden: the read-only token may not read "+r.URL.Path+"; it needs the full token")
			return
		}
		next.ServeHTTP(w, r)
	}), t)
}

// tokenMatches reports whether got is the token whose SHA-256 digest is
// want. It compares digests, which all have one length, because
// subtle.ConstantTimeCompare returns at once on inputs of different
// lengths, and its time would show the token's length; the cluster secret
// is compared the same way (validSecret).
func tokenMatches(got string, want [sha256.Size]byte) bool {
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(d[:], want[:]) == 1
}

// readScopeKey marks, in a request's context, a request RequireTokens
// passed with the read-only token.
type readScopeKey struct{}

// readScope reports whether r was passed with the read-only token: it may
// attach read-only only.
func readScope(r *http.Request) bool {
	ro, _ := r.Context().Value(readScopeKey{}).(bool)
	return ro
}

// unauthorized answers 401 with msg.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ptyhost"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// requestToken returns the token r carries, or why it carries none: the
// Authorization header, else a WebSocket upgrade's token subprotocol
// (wsproto.TokenSubprotocol), else the query parameter access_token.
func requestToken(r *http.Request) (token, problem string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		// Only an upgrade offers subprotocols.
		if isWebSocket(r) {
			if t, ok, problem := subprotocolToken(r.Header); ok || problem != "" {
				return t, problem
			}
		}
		if t := r.URL.Query().Get("access_token"); t != "" {
			return t, ""
		}
		return "", "unauthorized: a token is required (Authorization: Bearer <token>)"
	}
	scheme, t, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", `unauthorized: the Authorization header must be "Bearer <token>"`
	}
	return strings.TrimLeft(t, " "), ""
}

// subprotocolToken returns the token of the first token subprotocol
// (wsproto.TokenSubprotocolPrefix) that h's Sec-WebSocket-Protocol
// offers, and ok; or why it cannot be read.
func subprotocolToken(h http.Header) (token string, ok bool, problem string) {
	for _, p := range offeredSubprotocols(h) {
		enc, found := strings.CutPrefix(p, wsproto.TokenSubprotocolPrefix)
		if !found {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", false, "unauthorized: the token subprotocol must hold the token in unpadded base64url (" + wsproto.TokenSubprotocolPrefix + "<base64url>)"
		}
		return string(b), true, ""
	}
	return "", false, ""
}

// offeredSubprotocols returns the subprotocols h's Sec-WebSocket-Protocol
// lines offer, in order.
func offeredSubprotocols(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(line, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// withoutTokenSubprotocols removes the token subprotocols from h's
// Sec-WebSocket-Protocol, keeping the others: a request forwarded to
// another node carries the cluster's secret, not the client's token.
func withoutTokenSubprotocols(h http.Header) {
	var keep []string
	for _, p := range offeredSubprotocols(h) {
		if !strings.HasPrefix(p, wsproto.TokenSubprotocolPrefix) {
			keep = append(keep, p)
		}
	}
	h.Del("Sec-WebSocket-Protocol")
	if len(keep) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(keep, ", "))
	}
}
