package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// Options configure the HTTP API.
type Options struct {
	// Token, when set, is required on every /api request as
	// "Authorization: Bearer <token>" (the scheme in any case), the
	// WebSocket subprotocol wsproto.TokenSubprotocol(token) or
	// "?access_token=<token>"; see RequireToken. Embedders with their own
	// authentication leave it empty and wrap the handler.
	Token string
	// ReadToken, when set with Token, is a second token that may only
	// list and read (GET) and attach read-only (mode=read); see
	// RequireTokens.
	ReadToken string
	// AllowedHosts lists the host names, besides IP addresses, localhost
	// and names under .localhost, that requests may name in their Host
	// header; see Guard.
	AllowedHosts []string
	// AllowedOrigins lists the origins, besides the server's own, whose
	// browser pages may call the API and attach; see Guard. Clients that
	// send no Origin are allowed.
	AllowedOrigins []string
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// WriteTimeout disconnects a WebSocket client that takes longer than
	// this to accept one message. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings each WebSocket client
	// (attach, events, the compatibility endpoint); a client that has not
	// answered by the next ping is disconnected, so a client whose network
	// vanished stops counting as attached. Zero means DefaultPingInterval;
	// a negative value sends no pings.
	PingInterval time.Duration
	// Stop, when set, serves POST /api/v1/server/stop: it asks the server
	// to stop as a signal would, hanging every session up when hangUp is
	// set, and returns at once, reporting whether the stop hangs the
	// sessions up (a server may do so on every stop). Nil leaves the
	// endpoint out (404): an embedder's process has its own life.
	Stop func(hangUp bool) (hangsUp bool)
	// Page, when set, serves the browser page (see package core/webui):
	// GET / and GET /assets/..., without a token (the page holds no
	// secret and asks for the token itself), with Guard's Host check but
	// not its Origin check, so that a link from another site may open it.
	// Nil leaves them out (404).
	Page http.Handler
	// Cluster makes the handler a node of a cluster, forwarding requests
	// about other nodes' sessions to them (cluster.go); the zero value is
	// a single server.
	Cluster ClusterOptions
}

// maxBodyBytes bounds a REST request body.
const maxBodyBytes = 1 << 20

// NewHandler returns the HTTP API for m: the REST endpoints under /api/v1
// and the WebSocket attach endpoint, plus /healthz. Mount it at the root of
// a mux (or under a prefix with http.StripPrefix). Every request passes
// Guard with opts' AllowedHosts and AllowedOrigins first, but for the GETs
// of opts.Page, which pass its Host check only (see Options.Page); request
// bodies are limited to 1 MiB (413 beyond), and must have arrived 30 s
// after the request's start, else the connection is closed (see
// bodyDeadline).
func NewHandler(m *core.Manager, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if s := opts.Cluster.Secret; s != "" && (s == opts.Token || s == opts.ReadToken) {
		opts.Logger.Error("the cluster secret equals a token: this node forwards nothing and takes no cluster request (ClusterOptions.Secret must differ from Token and ReadToken)")
		opts.Cluster = ClusterOptions{}
	}
	h := &handler{m: m, opts: opts, log: opts.Logger, cl: newCluster(opts.Cluster, m.SpawnTimeout())}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("POST /api/v1/environments", h.createEnvironment)
	mux.HandleFunc("GET /api/v1/environments", h.listEnvironments)
	mux.HandleFunc("GET /api/v1/environments/{id}", h.getEnvironment)
	mux.HandleFunc("DELETE /api/v1/environments/{id}", h.deleteEnvironment)
	mux.HandleFunc("PUT /api/v1/environments/{id}", h.updateEnvironment)
	mux.HandleFunc("GET /api/v1/environments/{id}/health", h.environmentHealth)
	mux.HandleFunc("GET /api/v1/plugins", h.listPlugins)
	mux.HandleFunc("POST /api/v1/plugins/{name}/restart", h.restartPlugin)
	mux.HandleFunc("POST /api/v1/sessions", h.createSession)
	mux.HandleFunc("GET /api/v1/sessions", h.listSessions)
	mux.HandleFunc("GET /api/v1/sessions/{id}", h.getSession)
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", h.owned(h.deleteSession))
	mux.HandleFunc("GET /api/v1/sessions/{id}/attach", h.owned(h.attach))
	mux.HandleFunc("POST /api/v1/sessions/prune", h.pruneSessions)
	mux.HandleFunc("POST /api/v1/sessions/{id}/restart", h.owned(h.restartSession))
	mux.HandleFunc("GET /api/v1/sessions/{id}/recording", h.owned(h.getRecording))
	mux.HandleFunc("GET /api/v1/auth", h.authScope)
	mux.HandleFunc("GET /api/v1/events", h.events)
	mux.HandleFunc("GET /api/v1/nodes", h.listNodes)
	mux.HandleFunc("DELETE /api/v1/nodes/{name}", h.removeNode)
	// The ancestor's JSON WebSocket protocol (compat.go).
	mux.HandleFunc("GET /ws/claude/{id}", h.owned(h.compatAttach))
	mux.HandleFunc("GET /ws/terminal/{id}", h.owned(h.compatAttach))
	if opts.Stop != nil {
		mux.HandleFunc("POST /api/v1/server/stop", h.stopServer)
	}
	if opts.Page != nil {
		// withPage serves these GETs before Guard; the routes here give
		// the other methods of / and /assets/ their JSON 405.
		mux.Handle("GET /{$}", opts.Page)
		mux.Handle("GET /assets/", opts.Page)
	}
	guard := GuardOptions{AllowedHosts: opts.AllowedHosts, AllowedOrigins: opts.AllowedOrigins}
	// A request another node forwards skips Guard and the token
	// (clusterAuth).
	direct := limitBody(jsonErrors(mux))
	api := h.clusterAuth(Guard(h.authenticate(direct), guard), direct)
	if opts.Page != nil {
		api = withPage(api, opts.Page, guard)
	}
	// Outermost, so that it bounds the bodies of the requests that skip
	// Guard too: those that carry a cluster secret, a wrong one included.
	return bodyDeadline(api)
}

type handler struct {
	m    *core.Manager
	opts Options
	log  *slog.Logger
	// cl forwards requests to the other nodes of a cluster; nil on a
	// single server.
	cl *cluster
}

// jsonErrors answers requests that match no route (404) or no method of a
// route (405) with the API's JSON error body instead of the mux's text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}, code: http.StatusOK}
		handler.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		msg := "no such endpoint: " + r.Method + " " + r.URL.Path
		if rec.code == http.StatusMethodNotAllowed {
			msg = "method " + r.Method + " not allowed on " + r.URL.Path
		}
		writeError(w, rec.code, msg)
	})
}

// statusRecorder keeps the status and headers of the mux's own 404 and
// 405 answers and discards their text.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.code = code }

// authenticate requires the token on /api and /ws requests when one is
// set.
func (h *handler) authenticate(next http.Handler) http.Handler {
	if h.opts.Token == "" {
		return next
	}
	api := RequireTokens(next, Tokens{Token: h.opts.Token, ReadToken: h.opts.ReadToken})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/ws/") {
			api.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 when the store answers, else 503 with what is wrong
// (see Manager.StoreHealth).
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	// /healthz needs no token: the database's error, which may name its
	// host and user, goes to the log (see StoreHealth), not to the caller.
	if err := h.m.StoreHealth(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "store": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "store": "ok"})
}

// writeJSON answers v as JSON with code. No answer is kept by a cache (a
// session's list, a token's scope: a GET with the legacy ?access_token=
// would otherwise be kept under its URL), nor read as anything but JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// errBodyTimeout: the request's body did not arrive within bodyDeadline's
// bound (408). A sentinel of its own, as other deadlines (a database's, a
// plugin's) wrap os.ErrDeadlineExceeded too, and are no client's fault.
var errBodyTimeout = errors.New("the request body did not arrive in time")

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, core.ErrInvalidArgument), errors.Is(err, shared.ErrInvalidConfig):
		return http.StatusBadRequest
	case errors.Is(err, shared.ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, core.ErrSessionNotFound), errors.Is(err, core.ErrEnvironmentNotFound), errors.Is(err, core.ErrPluginNotFound),
		errors.Is(err, core.ErrNodeNotFound):
		return http.StatusNotFound
	case errors.Is(err, core.ErrAlreadyExists), errors.Is(err, core.ErrEnvironmentInUse),
		errors.Is(err, core.ErrSessionEnded), errors.Is(err, core.ErrRestartInProgress), errors.Is(err, core.ErrNodeInUse):
		return http.StatusConflict
	case errors.Is(err, shared.ErrUnavailable), errors.Is(err, core.ErrClosed), errors.Is(err, core.ErrNoPlugin),
		errors.Is(err, core.ErrStoreUnavailable), errors.Is(err, core.ErrOtherNode):
		return http.StatusServiceUnavailable
	case errors.Is(err, core.ErrPluginTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, core.ErrSpawn):
		return http.StatusBadGateway
	case errors.Is(err, core.ErrNotSupported):
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, code, err.Error())
}

// decode reads a JSON object from r's body into v, rejecting unknown
// fields, a key twice in one object (duplicateKey), any other JSON value
// (null, an array, a number) and anything after the object. A body beyond maxBodyBytes (limitBody) is an error
// wrapping *http.MaxBytesError.
func decode(r *http.Request, v any) error {
	// The body is read whole (it is at most maxBodyBytes): a decoder
	// alone cannot tell a literal null, which leaves v as it is, from {}.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if rerr := readBodyError(err); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: reading the request body: %v", core.ErrInvalidArgument, err)
	}
	obj := bytes.TrimLeft(body, jsonSpace)
	if len(obj) == 0 {
		return fmt.Errorf("%w: request body is empty; want a JSON object", core.ErrInvalidArgument)
	}
	if obj[0] != '{' {
		return fmt.Errorf("%w: request body is not a JSON object", core.ErrInvalidArgument)
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", core.ErrInvalidArgument, wsproto.JSONError(err, v))
	}
	// Only white space may follow the object. Decoder.More is no test
	// of that: it reports false before a stray '}' or ']'.
	if len(bytes.TrimLeft(obj[dec.InputOffset():], jsonSpace)) != 0 {
		return fmt.Errorf("%w: request body: data after the JSON object", core.ErrInvalidArgument)
	}
	if k, ok := duplicateKey(obj); ok {
		return fmt.Errorf("%w: request body: %q appears twice in one object", core.ErrInvalidArgument, k)
	}
	return nil
}

// jsonSpace is the white space JSON allows between values.
const jsonSpace = " \t\r\n"

type sessionRequest struct {
	ID            string            `json:"id"`
	EnvironmentID string            `json:"environment_id"`
	ProjectID     string            `json:"project_id"`
	BranchName    string            `json:"branch_name"`
	WorktreePath  string            `json:"worktree_path"`
	Command       []string          `json:"command"`
	Env           map[string]string `json:"env"`
	Cols          *int              `json:"cols"`
	Rows          *int              `json:"rows"`
	// IdleTimeout is CreateOptions.IdleTimeout: "never", "0" or a
	// duration such as "90s".
	IdleTimeout string `json:"idle_timeout"`
	// Input is CreateOptions.Input, as text.
	Input string `json:"input"`
	// UnsetEnv is CreateOptions.UnsetEnv.
	UnsetEnv []string `json:"unset_env"`
	// Record is CreateOptions.Record: true or false; absent means the
	// environment's setting, else the server's.
	Record *bool `json:"record"`
	// MaxClients is CreateOptions.MaxClients: 0 or absent is the
	// server's limit.
	MaxClients int `json:"max_clients"`
	// SizePolicy is CreateOptions.SizePolicy: "latest", "smallest", or
	// empty for the server's.
	SizePolicy string `json:"size_policy"`
}

func (h *handler) createSession(w http.ResponseWriter, r *http.Request) {
	var req sessionRequest
	body, err := bufferBody(r) // placement.go: kept to forward
	if err == nil {
		err = decode(r, &req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	opts := core.CreateOptions{
		ID:            req.ID,
		EnvironmentID: req.EnvironmentID,
		ProjectID:     req.ProjectID,
		BranchName:    req.BranchName,
		WorktreePath:  req.WorktreePath,
		Command:       req.Command,
		Env:           req.Env,
		Cols:          core.DefaultCols,
		Rows:          core.DefaultRows,
		IdleTimeout:   req.IdleTimeout,
		Input:         []byte(req.Input),
		UnsetEnv:      req.UnsetEnv,
		Record:        req.Record,
		MaxClients:    req.MaxClients,
		SizePolicy:    core.SizePolicy(req.SizePolicy),
	}
	if req.Cols != nil {
		opts.Cols = *req.Cols
	}
	if req.Rows != nil {
		opts.Rows = *req.Rows
	}
	if err := core.ValidSize(opts.Cols, opts.Rows); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.placedElsewhere(w, r, req.EnvironmentID, body) {
		return
	}
	rec, err := h.m.CreateSession(r.Context(), opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

// listSessions answers a page of sessions and, when there are more, the
// cursor of the next page. While the database is unavailable, the page is
// of the sessions in the manager's memory, marked partial, with the reason.
func (h *handler) listSessions(w http.ResponseWriter, r *http.Request) {
	o, err := listOptionsFrom(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	o.AllowPartial = true
	page, err := h.m.QuerySessions(r.Context(), o)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body := map[string]any{"sessions": page.Sessions}
	if page.NextCursor != "" {
		body["next_cursor"] = page.NextCursor
	}
	if page.Partial != nil {
		body["partial"] = true
		body["partial_reason"] = page.Partial.Error()
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *handler) getSession(w http.ResponseWriter, r *http.Request) {
	rec, err := h.m.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *handler) deleteSession(w http.ResponseWriter, r *http.Request) {
	if err := h.m.DestroySession(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
