package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// Node to node. In a cluster (docs/design.md, "Nodes") a session runs on
// the node that created it, and a request about it may arrive at any
// node: the receiving node forwards it to the owner (forwardTo), which
// serves it as its own. Forwarded requests carry the cluster secret, so
// the owner trusts what the forwarding node already checked (Host,
// Origin, the token) and takes the caller's scope from it.

// Headers of forwarded requests. A client's request that does not carry
// the valid secret never passes one of them on: clusterAuth strips them.
const (
	// HeaderClusterSecret carries the cluster secret, compared in
	// constant time.
	HeaderClusterSecret = "Ptyhost-Cluster-Secret"
	// HeaderClusterScope is the scope the forwarding node granted the
	// caller: ScopeFull or ScopeRead.
	HeaderClusterScope = "Ptyhost-Cluster-Scope"
	// HeaderClusterHop marks a forwarded request: one is never forwarded
	// again (508 Loop Detected), so two nodes that disagree about an
	// owner cannot bounce a request between them.
	HeaderClusterHop = "Ptyhost-Cluster-Hop"
	// HeaderClusterNode names the node the request was forwarded to: any
	// other node that it reaches refuses it (misdirected).
	HeaderClusterNode = "Ptyhost-Cluster-Node"
)

// The values of HeaderClusterScope.
const (
	ScopeFull = "full"
	ScopeRead = "read"
)

// clusterHeaderPrefix is what the cluster's headers begin with.
const clusterHeaderPrefix = "Ptyhost-Cluster-"

// CloseNodeLost and CloseReasonNodeLost close a WebSocket proxied to a
// session's owner when the owner is lost: its connection broke without a
// close frame, or its lease expired, or it cannot be reached at all.
const (
	CloseNodeLost       = wsproto.CloseNodeLost
	CloseReasonNodeLost = wsproto.CloseReasonNodeLost
)

// DefaultNodeCheckInterval is how often a proxied WebSocket checks its
// owner's lease when ClusterOptions.NodeCheckInterval is zero.
const DefaultNodeCheckInterval = 2 * time.Second

// forwardDialTimeout bounds a connection to another node: one that does
// not answer the dial is as lost as one that refuses it.
const forwardDialTimeout = 5 * time.Second

// ClusterOptions make the handler a node of a cluster. The zero value is a
// single server: nothing is forwarded, and the cluster's headers are
// stripped from every request and mean nothing.
type ClusterOptions struct {
	// NodeName is this node's name (core.Options.NodeName). Requests
	// about sessions recorded with another node's name are forwarded to
	// that node's URL in the registry (core.Manager.ListNodes).
	NodeName string
	// Secret is the cluster secret the nodes share: sent on every
	// forwarded request, and required of every request that carries a
	// cluster header. Never logged. It must differ from Options.Token and
	// Options.ReadToken: a request with the secret skips the token checks
	// and says its own scope. A handler whose secret equals either runs as
	// a single server, forwarding nothing and taking no cluster request,
	// and logs why.
	Secret string
	// NodeCheckInterval is how often a proxied WebSocket checks that its
	// session's owner still holds its lease; zero means
	// DefaultNodeCheckInterval.
	NodeCheckInterval time.Duration
}

// cluster is a node's forwarding state, shared by its requests.
type cluster struct {
	name string
	// secret is sent on forwarded requests; digest, its SHA-256, is what
	// received secrets are compared with, so that the comparison takes
	// the same time whatever their lengths.
	secret   string
	digest   [sha256.Size]byte
	interval time.Duration
	// transport carries forwarded requests: HTTP/1.1 only, since a
	// WebSocket upgrade cannot cross HTTP/2.
	transport *http.Transport
	// starts is transport for the requests that start a program (a
	// create, a restart: POSTs), whose answers may take the spawn timeout.
	starts *http.Transport

	// mu protects the following: the registry as the proxied
	// WebSockets' watchers last read it (see nodes).
	mu     sync.Mutex
	read   []core.Node
	readAt time.Time

	// tunnelsMu protects the following: the proxied WebSockets open, and
	// the servers whose shutdown ends them (restartTunnels).
	tunnelsMu sync.Mutex
	tunnels   map[*tunnel]struct{}
	servers   map[*http.Server]bool
}

// newCluster returns o's forwarding state, or nil for a single server.
// A create or a restart forwarded to the node that runs it waits for its
// answer as long as that node's plugin may take to start the program
// (spawnTimeout) and a minute more: given up sooner, the client would be
// told the node is lost while the session starts there, and a client
// trying again would start a second one.
func newCluster(o ClusterOptions, spawnTimeout time.Duration) *cluster {
	if o.NodeName == "" || o.Secret == "" {
		return nil
	}
	if o.NodeCheckInterval <= 0 {
		o.NodeCheckInterval = DefaultNodeCheckInterval
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Straight to the node advertised: never through $HTTP_PROXY, which
	// would get the cluster secret and every forwarded byte.
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ForceAttemptHTTP2 = false
	// An owner that takes the connection but never answers (a partition,
	// a stopped process) fails the request instead of holding it.
	tr.ResponseHeaderTimeout = forwardAnswerTimeout
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	starts := tr.Clone()
	starts.ResponseHeaderTimeout = spawnTimeout + time.Minute
	return &cluster{name: o.NodeName, secret: o.Secret, digest: sha256.Sum256([]byte(o.Secret)),
		interval: o.NodeCheckInterval, transport: tr, starts: starts}
}

// transportFor returns the transport that forwards r: c.starts for a
// POST (a create placed on another node, a restart), which starts a
// program, else c.transport.
func (c *cluster) transportFor(r *http.Request) *http.Transport {
	if r.Method == http.MethodPost {
		return c.starts
	}
	return c.transport
}

// validSecret compares got with the cluster secret in constant time.
func (c *cluster) validSecret(got string) bool {
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(d[:], c.digest[:]) == 1
}

// forwardedKey marks, in a request's context, a request another node
// forwarded with the valid cluster secret.
type forwardedKey struct{}

// forwarded reports whether r came from another node of the cluster.
// forwardAnswerTimeout bounds the wait for the owner's answer to a
// forwarded request (its headers: a WebSocket's 101, a DELETE's 204 after
// the kill's grace).
var forwardAnswerTimeout = 30 * time.Second // a variable for the tests

func forwarded(r *http.Request) bool {
	f, _ := r.Context().Value(forwardedKey{}).(bool)
	return f
}

// clusterAuth passes a request that carries the valid cluster secret to
// direct, skipping the Host, Origin and token checks (the forwarding node
// made them), with the scope it forwards; refuses one that carries
// another secret (401, logged without the value); and passes every other
// request to guarded, the cluster's headers stripped, so that a client
// cannot claim a scope.
func (h *handler) clusterAuth(guarded, direct http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, sent := r.Header[HeaderClusterSecret]
		if !sent || h.cl == nil {
			guarded.ServeHTTP(w, withoutClusterHeaders(r))
			return
		}
		if len(secret) != 1 || !h.cl.validSecret(secret[0]) {
			h.log.Warn("refused a request with a wrong cluster secret", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, http.StatusUnauthorized, "unauthorized: wrong cluster secret")
			return
		}
		if h.misdirected(w, r) {
			return
		}
		ctx := context.WithValue(r.Context(), forwardedKey{}, true)
		switch scope := r.Header.Get(HeaderClusterScope); scope {
		case ScopeFull:
		case ScopeRead:
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: a read-only caller may list, read and attach with %s=%s only", wsproto.ModeParam, wsproto.ModeRead))
				return
			}
			ctx = context.WithValue(ctx, readScopeKey{}, true)
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want %s or %s", HeaderClusterScope, scope, ScopeFull, ScopeRead))
			return
		}
		direct.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withoutClusterHeaders returns r without the cluster's headers, if it
// has any.
func withoutClusterHeaders(r *http.Request) *http.Request {
	var found bool
	for k := range r.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), clusterHeaderPrefix) {
			found = true
			break
		}
	}
	if !found {
		return r
	}
	r = r.Clone(r.Context())
	for k := range r.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), clusterHeaderPrefix) {
			delete(r.Header, k)
		}
	}
	return r
}

// owned serves a request about session {id} with next where the session
// runs here, and forwards it to its owner otherwise (remoteOwner). A
// session recorded node_lost while its node is still away (ownerLost) may
// run again when that node comes back: a request about it is answered 503
// node_lost, to be tried again, not as about a session that ended; but a
// DELETE, which ends it here (core's DestroySession), and a WebSocket,
// which the endpoint answers (attachFailed answers the attach so, before
// any upgrade; the compatibility endpoint, whose client sees no status,
// accepts and closes with CloseNodeLost).
func (h *handler) owned(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node, where, err := h.remoteOwner(r.Context(), r.PathValue("id"))
		switch {
		case err != nil:
			h.fail(w, r, err)
		case where == ownerRemote:
			h.forwardTo(w, r, node)
		case where == ownerLost && r.Method != http.MethodDelete && !isWebSocket(r):
			writeNodeLost(w, node.Name, recordedLost(node.Name))
		default:
			next(w, r)
		}
	}
}

// ownerWhere is where remoteOwner finds a session's owner.
type ownerWhere int

const (
	// ownerHere: the request is served here.
	ownerHere ownerWhere = iota
	// ownerRemote: another node runs the session; the request is
	// forwarded to it.
	ownerRemote
	// ownerLost: the session's node, another one, is lost, and the
	// session is recorded ERROR node_lost: served here (lostOwner).
	ownerLost
)

// remoteOwner returns the node that owns session id, and where the
// request is served: ownerRemote, forwarded to that node, when it is
// another one. A session that runs here is this node's at once, without a
// look at the store; for any other, its record names its
// node: one that has exited and lingers here is this node's only while the
// store's record is its own, since its id may have been created again on
// another node (core's GetSession says which). It reports ownerHere —
// serve the request here — on a single server, for a session of this node
// or of none, for one the store does not know, and for one that has ended
// on a node that is no longer healthy (its record here answers as well as
// the owner would), and ownerLost when that end is the node's loss
// (lostOwner). When the store cannot be read, it returns the error
// (wrapping core.ErrStoreUnavailable, 503): the session may run on
// another node, and serving the request here would answer 404, which
// clients take as the session's end.
func (h *handler) remoteOwner(ctx context.Context, id string) (core.Node, ownerWhere, error) {
	if h.cl == nil {
		return core.Node{}, ownerHere, nil
	}
	rec, err := h.m.GetSession(ctx, id)
	if err != nil && !errors.Is(err, core.ErrSessionNotFound) {
		return core.Node{}, ownerHere, err
	}
	if err != nil || rec.Node == "" || rec.Node == h.cl.name {
		return core.Node{}, ownerHere, nil
	}
	node := h.nodeNamed(ctx, rec.Node)
	switch {
	case node.Healthy:
		return node, ownerRemote, nil
	case rec.Status == core.StatusError && core.IsNodeLost(rec.StatusReason):
		return node, ownerLost, nil
	case rec.Status == core.StatusTerminated || rec.Status == core.StatusError:
		return core.Node{}, ownerHere, nil
	}
	return node, ownerRemote, nil
}

// lostOwner reports whether rec is the record of a session that another
// node ran, recorded ERROR node_lost (core.IsNodeLost), while that node is
// still lost (not healthy), and returns the node. Such a session may run
// again: a node that comes back with its sessions kept takes them up
// (core's reclaimNodeLost). Once the node is back, a record still
// node_lost is final (no plugin kept the session), and so is one a single
// server reads: it has no node to wait for.
func (h *handler) lostOwner(ctx context.Context, rec core.SessionRecord) (core.Node, bool) {
	if h.cl == nil || rec.Node == "" || rec.Node == h.cl.name ||
		rec.Status != core.StatusError || !core.IsNodeLost(rec.StatusReason) {
		return core.Node{}, false
	}
	node := h.nodeNamed(ctx, rec.Node)
	return node, !node.Healthy
}

// nodeNamed returns the registry's node name, or, when the registry does
// not list it or cannot be read, a node of that name that is not healthy.
func (h *handler) nodeNamed(ctx context.Context, name string) core.Node {
	nodes, err := h.m.ListNodes(ctx)
	if err != nil {
		h.log.Warn("reading the nodes to forward to", "node", name, "err", err)
	}
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	return core.Node{Name: name}
}

// forwardTo proxies r (any method, WebSocket upgrades included, byte for
// byte, close codes intact) to node.URL with the cluster credentials,
// carrying the caller's scope (full or read-only) that this node already
// authenticated. The caller's token and its browser headers (Origin,
// Sec-Fetch-*) stay here: the owner trusts the secret instead.
//
// A request that another node forwarded is not forwarded again: 508. A
// node that is not healthy, or that cannot be reached, is lost: 503, or,
// for a WebSocket, an accepted upgrade closed with CloseNodeLost. A
// proxied WebSocket whose owner's connection breaks without a close
// frame, or whose owner's lease expires, is closed with CloseNodeLost too
// (see nodeConn).
//
// A caller that has read r's body must put it back (r.Body, and
// r.ContentLength) before calling.
func (h *handler) forwardTo(w http.ResponseWriter, r *http.Request, node core.Node) {
	if h.cl == nil {
		// A caller's bug: only a node of a cluster has others to forward to.
		h.fail(w, r, fmt.Errorf("this server is not a node of a cluster: cannot forward to node %q", node.Name))
		return
	}
	if forwarded(r) {
		writeError(w, http.StatusLoopDetected, fmt.Sprintf("loop detected: node %s forwarded this request for node %s, and the nodes disagree about who runs it; try again", h.cl.name, node.Name))
		return
	}
	if !node.Healthy {
		h.nodeLost(w, r, node)
		return
	}
	if node.ClusterSecret == core.SecretDiffers {
		// The registry says it would refuse this node's secret: nothing is
		// sent, so the secret does not go to a node configured apart. The
		// store logged the mismatch once, when it first saw the node.
		writeError(w, http.StatusBadGateway, secretDiffers(node.Name, h.cl.name, r.PathValue("id")))
		return
	}
	target, err := url.Parse(node.URL)
	if err != nil || target.Host == "" {
		h.log.Error("a node's URL in the registry is not a URL", "node", node.Name, "url", node.URL)
		h.nodeLost(w, r, node)
		return
	}
	scope := ScopeFull
	if readScope(r) {
		scope = ScopeRead
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			out := pr.Out.Header
			for _, k := range []string{"Authorization", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User"} {
				out.Del(k)
			}
			if q := pr.Out.URL.Query(); q.Has("access_token") {
				q.Del("access_token")
				pr.Out.URL.RawQuery = q.Encode()
			}
			withoutTokenSubprotocols(out)
			out.Set(HeaderClusterSecret, h.cl.secret)
			out.Set(HeaderClusterScope, scope)
			out.Set(HeaderClusterHop, "1")
			out.Set(HeaderClusterNode, node.Name)
		},
		Transport:      h.cl.transportFor(r),
		ModifyResponse: refusedSecret,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if errors.Is(err, errSecretRefused) {
				// The client passed this node's checks; the owner refused
				// this node: its 401 would read as the client's token.
				h.log.Error("a node refused this node's cluster secret: the nodes' --cluster-secret settings differ", "node", node.Name)
				writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s, which runs this session, refused node %s's cluster secret: the nodes are configured with different --cluster-secret settings", node.Name, h.cl.name))
				return
			}
			h.log.Warn("forwarding to a node failed", "node", node.Name, "method", r.Method, "path", r.URL.Path, "err", err)
			h.nodeLost(w, r, node)
		},
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	if !isWebSocket(r) {
		p.ServeHTTP(w, r)
		return
	}
	h.proxyWebSocket(w, r, p, node)
}

// nodeLost answers a request for node, which is lost: a WebSocket upgrade
// is accepted and closed with CloseNodeLost (a browser's WebSocket sees
// no HTTP status), any other request is 503.
func (h *handler) nodeLost(w http.ResponseWriter, r *http.Request, node core.Node) {
	if !isWebSocket(r) {
		writeNodeLost(w, node.Name, fmt.Sprintf("node %s, which runs this session, is lost: it does not hold its lease or does not answer", node.Name))
		return
	}
	// Guard has checked the Origin; Accept's own check stays as a second
	// line (see attach).
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{wsproto.Subprotocol},
		OriginPatterns: h.opts.AllowedOrigins,
	})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	_ = conn.Close(CloseNodeLost, CloseReasonNodeLost)
}

// writeNodeLost answers 503 for a session whose node, node, is lost, with
// msg, the node and the reason clients test for: they try again later.
func writeNodeLost(w http.ResponseWriter, node, msg string) {
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{
		"error":  msg,
		"node":   node,
		"reason": CloseReasonNodeLost,
	})
}

// recordedLost is writeNodeLost's message for a session recorded
// node_lost while its node, node, is away.
func recordedLost(node string) string {
	return fmt.Sprintf("node %s, which ran this session, is lost: its lease expired and the session is recorded as node_lost; "+
		"it runs again if the node comes back with it", node)
}

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
