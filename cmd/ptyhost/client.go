package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// defaultServer is where the client commands look for the server when
// neither --server nor PTYHOST_SERVER says otherwise.
const defaultServer = "http://127.0.0.1:7420"

// client is a small REST client for the ptyhost API (docs/protocol.md).
// It is safe for concurrent use.
type client struct {
	base  *url.URL // http or https, without a trailing slash in Path
	token string   // sent as Authorization: Bearer when non-empty
	http  *http.Client
	// timeout bounds each REST call without a deadline of its own
	// (requestTimeout; tests shorten it).
	timeout time.Duration
}

// requestTimeout bounds a REST call, so that a server that accepts the
// connection and never answers (stopped with SIGSTOP, hung) ends the
// command with an error instead of hanging it. The calls that start a
// program or a plugin wait longer (spawnTimeout, pluginStartTimeout); a
// download (rec) is bounded in its wait for the answer and between its
// reads, never in total.
const requestTimeout = 30 * time.Second

const (
	// spawnTimeout bounds a call that starts a session's program: the
	// server's own bound (core.DefaultSpawnTimeout, above an SSH
	// environment's longest connect_timeout) and a minute more, so that
	// the server's 504 saying why comes first (a restart also waits for
	// the old program to end).
	spawnTimeout = core.DefaultSpawnTimeout + time.Minute
	// pluginStartTimeout bounds a plugin's restart, which the server
	// waits for up to the plugin's start timeout (a minute).
	pluginStartTimeout = 2 * time.Minute
)

// noAnswerError is a call the server did not answer within its bound.
type noAnswerError struct {
	base   *url.URL
	within time.Duration
}

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("the ptyhost server at %s did not answer within %v", e.base, e.within)
}

// Unwrap makes it a context.DeadlineExceeded.
func (e *noAnswerError) Unwrap() error { return context.DeadlineExceeded }

// bound gives ctx the deadline within unless it has one already (a
// caller's own, shorter or longer); timedOut turns an error that came of
// that deadline into a *noAnswerError, and returns any other as it is.
func (c *client) bound(ctx context.Context, within time.Duration) (_ context.Context, cancel context.CancelFunc, timedOut func(error) error) {
	if _, ok := ctx.Deadline(); ok || within <= 0 {
		return ctx, func() {}, func(err error) error { return err }
	}
	cause := &noAnswerError{base: c.base, within: within}
	ctx, cancel = context.WithTimeoutCause(ctx, within, cause)
	return ctx, cancel, func(err error) error {
		if err != nil && errors.Is(context.Cause(ctx), cause) {
			return cause
		}
		return err
	}
}

// newClient checks server and returns a client for it. server is a URL
// or, as the server prints its --listen address, a bare HOST:PORT, which
// means http://HOST:PORT (a bare HOST, which would mean port 80, is
// refused; a URL with a scheme keeps its default port). A bad URL is a
// usageError: it can only have come from --server or PTYHOST_SERVER.
func newClient(server, token string) (*client, error) {
	raw := server
	bare := !strings.Contains(raw, "://")
	if bare {
		raw = "http://" + raw
	}
	const want = "want HOST:PORT, http://HOST:PORT or https://HOST:PORT"
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" && strings.HasSuffix(u.Host, ":"):
		return nil, usageError{fmt.Sprintf("--server (PTYHOST_SERVER): invalid server URL %q: %s", redactURL(server), want)}
	case bare && u.Port() == "":
		return nil, usageError{fmt.Sprintf("--server (PTYHOST_SERVER): invalid server URL %q: no port: %s", redactURL(server), want)}
	case u.Hostname() == "":
		// Go would dial the local machine for ":7420", but send the
		// request for the host ":7420", which the server refuses (421).
		return nil, usageError{fmt.Sprintf("--server (PTYHOST_SERVER): invalid server URL %q: no host: %s", redactURL(server), want)}
	case !validPort(u.Port()):
		// url.Parse takes any digits for a port; the dial would fail
		// only later, as if the server could not be reached.
		return nil, usageError{fmt.Sprintf("--server (PTYHOST_SERVER): invalid server URL %q: the port must be a number from 1 to 65535: %s", redactURL(server), want)}
	case strings.ContainsAny(raw, "?#"):
		// Parsed, a '?' or '#' can only begin a query or a fragment,
		// which no request would carry.
		return nil, usageError{fmt.Sprintf("--server (PTYHOST_SERVER): invalid server URL %q: it has a query or fragment (?, #), which the API's paths do not take: %s", redactURL(server), want)}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return &client{base: u, token: token, http: &http.Client{CheckRedirect: noRedirects}, timeout: requestTimeout}, nil
}

// validPort reports whether port, the digits url.Parse found after the
// host (or none, for the scheme's default), is one a server can listen on.
func validPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// redactURL returns raw with the password of its user information, if it
// has any, replaced: for messages, which must not repeat a password
// however the URL came to hold one. A raw URL that does not parse is cut
// at its last '@' before the host.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		rest = "xxxxx" + rest[i:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// noRedirects is the client's http.Client.CheckRedirect: the API never
// answers with a redirect, so one means the request reached something
// else (a proxy, another server, or a path the server's router cleaned,
// such as /environments/. into the list), whose answer must not be taken
// for the API's. readAPIError says where it pointed.
func noRedirects(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// apiError is an error response from the server. Error prints it as
// "<message> (HTTP <status>)".
type apiError struct {
	Status   int
	Message  string
	ExitCode *int // set by a 410 from the attach endpoint
	// Abnormal: the 410's session ended in a way its process did not
	// choose (status ERROR).
	Abnormal bool
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error    string `json:"error"`
	ExitCode *int   `json:"exit_code"`
	Status   string `json:"status"` // a 410's: the session's
}

// readAPIError turns a non-2xx response into an *apiError, using the
// {"error": ...} body when there is one and the status text otherwise; a
// redirect's says where it pointed.
func readAPIError(resp *http.Response) *apiError {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	if loc, err := resp.Location(); resp.StatusCode >= 300 && resp.StatusCode <= 399 && err == nil {
		return &apiError{Status: resp.StatusCode, Message: fmt.Sprintf(
			"the server redirected the request to %s, and the ptyhost API never redirects: if the server is there, give its URL as --server (PTYHOST_SERVER)", loc.Redacted())}
	}
	return newAPIError(resp.StatusCode, body)
}

// newAPIError makes the *apiError of a response with status and body.
func newAPIError(status int, body []byte) *apiError {
	e := &apiError{Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		// The message may quote a plugin's error text: made safe to
		// print (printable.go).
		e.Message, e.ExitCode = printableMessage(eb.Error), eb.ExitCode
		e.Abnormal = eb.Status == "ERROR"
	} else {
		e.Message = strings.ToLower(http.StatusText(status))
		if e.Message == "" {
			e.Message = "unexpected response"
		}
	}
	if status == http.StatusUnauthorized {
		e.Message = "unauthorized: check --token or PTYHOST_TOKEN"
	}
	return e
}

// url returns the absolute URL of an API path such as
// "/api/v1/sessions". Path elements must already be escaped.
func (c *client) url(path string) string {
	return c.base.String() + path
}

// wsURL is url with the scheme changed to ws or wss.
func (c *client) wsURL(path string) string {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	return u.String() + path
}

// header returns the headers every request carries.
func (c *client) header() http.Header {
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return h
}

// noContent, as do's out, expects the 204 No Content with which the API
// answers a DELETE: any other success is not the API's (a proxy, another
// server answering 200 with a page), and an error.
type noContent struct{}

// do sends a request with in (when non-nil) as its JSON body and decodes a
// 2xx JSON response into out (when non-nil; noContent{} wants a 204). A
// non-2xx response is an *apiError. Without a deadline of its own, ctx
// gets c.timeout: a server that does not answer by then is a
// *noAnswerError.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWithin(ctx, c.timeout, method, path, in, out)
}

// doWithin is do with the bound within instead of c.timeout.
func (c *client) doWithin(ctx context.Context, within time.Duration, method, path string, in, out any) error {
	ctx, cancel, timedOut := c.bound(ctx, within)
	defer cancel()
	return timedOut(c.send(ctx, method, path, in, out))
}

// send is do without the bound.
func (c *client) send(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return err
	}
	req.Header = c.header()
	req.Header.Set("Accept", "application/json")
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// Required even without a body (docs/protocol.md).
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(resp)
	}
	if _, ok := out.(noContent); ok {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("%s %s: bad response from server: HTTP %d, want 204 No Content", method, path, resp.StatusCode)
		}
		return nil
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxResponseBody + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("%s %s: bad response from server: larger than %d MiB", method, path, maxResponseBody>>20)
		}
		return fmt.Errorf("%s %s: bad response from server: %w", method, path, err)
	}
	return nil
}

// maxResponseBody bounds an answer of the API that the client reads whole:
// far beyond any the server sends (a page of sessions is a few hundred
// KiB), and as the protocol's WebSocket messages are bounded.
const maxResponseBody = 16 << 20

// connError explains a failure to talk to the server at all.
func (c *client) connError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// The innermost *url.Error names the request; the error it wraps
	// (dial tcp ...: connection refused) is what the user needs.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach the ptyhost server at %s: %w", c.base.Redacted(), err)
}

// The API's environments and sessions are core's own types.
type (
	environment = core.Environment
	session     = core.SessionRecord
)

// createSessionRequest is the body of POST /api/v1/sessions.
type createSessionRequest struct {
	ID            string            `json:"id,omitempty"`
	EnvironmentID string            `json:"environment_id"`
	WorktreePath  string            `json:"worktree_path,omitempty"`
	Command       []string          `json:"command,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Cols          int               `json:"cols,omitempty"`
	Rows          int               `json:"rows,omitempty"`
	IdleTimeout   string            `json:"idle_timeout,omitempty"`
}

// createEnvironmentRequest is the body of POST /api/v1/environments.
type createEnvironmentRequest struct {
	ID     string          `json:"id,omitempty"`
	Name   string          `json:"name,omitempty"`
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config,omitempty"`
	// Node and Nodes say which nodes of a cluster serve it (env add
	// --node, --nodes).
	Node  string   `json:"node,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
}

func (c *client) createSession(ctx context.Context, req createSessionRequest) (*session, error) {
	var s session
	if err := c.doWithin(ctx, spawnTimeout, http.MethodPost, "/api/v1/sessions", req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// listSessionsRaw returns every session, each exactly as the server sent
// it, in one JSON array: it follows next_cursor through the pages. partial
// is the reason the server gave for a page of only the sessions it holds
// in memory (its database unavailable), "" when every page was whole.
func (c *client) listSessionsRaw(ctx context.Context) (raw json.RawMessage, partial string, err error) {
	return c.listSessionsQuery(ctx, lsQuery{})
}

// lsQuery selects the sessions GET /api/v1/sessions lists; the zero value
// selects all.
type lsQuery struct {
	statuses    []core.Status // any of them
	environment string
}

// listSessionsQuery is listSessionsRaw for the sessions q selects.
// maxListPages bounds the pages of one listing: 10,000 full pages are
// millions of sessions. A variable, which TestLsEndlessPages lowers.
var maxListPages = 10000

func (c *client) listSessionsQuery(ctx context.Context, q lsQuery) (raw json.RawMessage, partial string, err error) {
	all := []json.RawMessage{}
	cursor := ""
	filter := ""
	if len(q.statuses) > 0 {
		names := make([]string, len(q.statuses))
		for i, st := range q.statuses {
			names[i] = string(st)
		}
		filter += "&status=" + url.QueryEscape(strings.Join(names, ","))
	}
	if q.environment != "" {
		filter += "&environment_id=" + url.QueryEscape(q.environment)
	}
	seen := map[string]bool{}
	for {
		path := "/api/v1/sessions?limit=" + fmt.Sprint(core.MaxListLimit) + filter
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var out struct {
			Sessions      []json.RawMessage `json:"sessions"`
			NextCursor    string            `json:"next_cursor"`
			Partial       bool              `json:"partial"`
			PartialReason string            `json:"partial_reason"`
		}
		if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
			return nil, "", err
		}
		all = append(all, out.Sessions...)
		if out.Partial && partial == "" {
			partial = cmp.Or(out.PartialReason, "the server did not say why")
		}
		if out.NextCursor == "" {
			break
		}
		// A server that hands out a cursor twice, or pages on and on,
		// would be followed for ever. (A page may be empty and still
		// have a next one: a filter drops what the store returned.)
		if seen[out.NextCursor] || len(seen) >= maxListPages {
			return nil, "", fmt.Errorf("bad response from the server: its list of sessions does not end (after %d pages, cursor %q)", len(seen)+1, out.NextCursor)
		}
		seen[out.NextCursor] = true
		cursor = out.NextCursor
	}
	raw, err = json.Marshal(all)
	return raw, partial, err
}

func (c *client) deleteSession(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/sessions/"+url.PathEscape(id), nil, noContent{})
}

// listEnvironmentsRaw returns the "environments" array exactly as the
// server sent it.
func (c *client) listEnvironmentsRaw(ctx context.Context) (json.RawMessage, error) {
	var out struct {
		Environments json.RawMessage `json:"environments"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/environments", nil, &out); err != nil {
		return nil, err
	}
	return out.Environments, nil
}

func (c *client) createEnvironment(ctx context.Context, req createEnvironmentRequest) (*environment, error) {
	var e environment
	if err := c.do(ctx, http.MethodPost, "/api/v1/environments", req, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

func (c *client) deleteEnvironment(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/environments/"+url.PathEscape(id), nil, noContent{})
}

func (c *client) getSession(ctx context.Context, id string) (*session, error) {
	var s session
	if err := c.do(ctx, http.MethodGet, "/api/v1/sessions/"+url.PathEscape(id), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// pruneSessions deletes the records of the ended sessions and returns how
// many it deleted.
func (c *client) pruneSessions(ctx context.Context) (int, error) {
	var out struct {
		Deleted int `json:"deleted"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/sessions/prune", struct{}{}, &out); err != nil {
		return 0, err
	}
	return out.Deleted, nil
}
