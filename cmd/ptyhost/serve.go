package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/shared"
)

// DefaultListen is the server's default address: loopback only.
const DefaultListen = "127.0.0.1:7420"

// defaultConnIdleTimeout is how long the HTTP server keeps a keep-alive
// connection that sends no request open: without a bound, anyone who can
// reach the port holds connections open for free until the server runs
// out of file descriptors. Two minutes spares clients that poll. It does
// not apply to WebSockets: the server lets go of a connection it hands
// to one.
const defaultConnIdleTimeout = 2 * time.Minute

// defaultOrphanTimeout is --orphan-timeout's default: long enough for an
// upgrade or a crash-restart by systemd, short enough that sessions of a
// server that never comes back do not run unseen for long.
const defaultOrphanTimeout = 10 * time.Minute

// serveConfig is the server's configuration after flags and environment.
type serveConfig struct {
	listen          string
	db              string
	dataDir         string
	pluginDir       string
	token           string
	insecure        bool
	allowedOrigins  stringList
	allowedHosts    stringList
	metricsAuth     bool
	workdirRoots    stringList
	scrollback      byteSize
	idleTimeout     time.Duration
	linger          time.Duration
	retention       retention
	shutdownTimeout time.Duration
	// orphanTimeout is how long the plugins keep the sessions of a server
	// that died or stopped without hanging them up, waiting for the next
	// server; hangUpOnStop makes every stop hang the sessions up instead.
	orphanTimeout time.Duration
	hangUpOnStop  bool
	// hangUpUnknown is --hang-up-unknown-sessions: this start hangs up the
	// sessions the plugins kept even when the database knows none of them
	// (keptunknown.go).
	hangUpUnknown bool
	logLevel      slog.Level
	logFormat     string
	// configPath is the configuration file, if any; plugins are its
	// plugin blocks. tokenInFile: it holds the token or the cluster
	// secret, readable by others.
	configPath  string
	plugins     []pluginhost.Config
	tokenInFile bool
	// readToken is the read-only token (api.Tokens.ReadToken); maxClients
	// and sizePolicy the sessions' client limit and size policy.
	readToken  string
	maxClients int
	sizePolicy core.SizePolicy
	// neverEnv names the variables no session gets (core.Options.NeverEnv).
	neverEnv []string
	// record, recordInput and recordMaxBytes are the sessions' recording
	// settings (core.Options.Record, RecordInput, RecordingMaxBytes); the
	// recordings are kept in DATA_DIR/recordings.
	record         bool
	recordInput    bool
	recordMaxBytes byteSize
	// web serves the browser page (core/webui) at / (--web).
	web bool
	// cluster makes this server a node of a cluster sharing its
	// PostgreSQL database with others (cluster.go); zero: a single server.
	cluster clusterConfig
	// tokenFlags names the secrets' flags given on the command line (a
	// --db with a password too), which every local user can read in the
	// process list; the server warns.
	tokenFlags []string
	// connIdleTimeout is the HTTP server's IdleTimeout; zero means
	// defaultConnIdleTimeout. No flag sets it: tests shorten it.
	connIdleTimeout time.Duration
}

func defaultDataDir() string {
	// The XDG Base Directory specification: a relative path is invalid
	// and is ignored.
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "ptyhost")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "ptyhost")
	}
	return "ptyhost-data"
}

// defaultPluginDir is "plugins" beside the executable.
func defaultPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

func runServe(ctx context.Context, args []string, io stdio) error {
	c, err := parseServeFlags(args, io)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return errServeOnWindows
	}
	return serve(ctx, c, io)
}

// errServeOnWindows is serve's answer on Windows. The server's plugins
// start sessions as Unix terminals and processes; on Windows ptyhost is a
// client of a server elsewhere.
var errServeOnWindows = errors.New("serve: the server runs on Linux, macOS and other Unix systems; on Windows ptyhost is a client: give its commands --server URL (or set PTYHOST_SERVER)")

// serve runs the server configured by c until ctx is done or it is
// stopped. A node that stopped because it lost its lease returns
// exitError{exitLost}, so that its supervisor starts it again; any other
// stop returns nil.
func serve(ctx context.Context, c serveConfig, io stdio) (err error) {
	var handler slog.Handler = slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: c.logLevel})
	if c.logFormat == "json" {
		handler = slog.NewJSONHandler(io.err, &slog.HandlerOptions{Level: c.logLevel})
	}
	log := slog.New(handler)

	// Before any plugin starts: descriptors inherited without
	// close-on-exec must not reach the plugins and their sessions
	// (cloexec.go).
	if err := closeOnExecInherited(); err != nil {
		log.Warn("inherited file descriptors may pass to the plugins and their sessions", "error", err)
	}

	ln, err := listenTCP(listenNetwork(c.listen), c.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := checkBound(ln.Addr(), c.listen, c.token, c.insecure); err != nil {
		return usageError{err.Error()}
	}

	tightened, err := prepareDataDir(c.dataDir, c.db)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(tightened) > 0 {
		log.Warn("the database could be read by other users, and it holds the environments' variables: made it private (0600)", "files", tightened)
	}

	db, err := gormstore.Open(ctx, c.db, gormstore.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	// Every path out of here (a failed start too) goes through the one
	// shutdown (servestop.go), which the server fills in as it starts:
	// it leaves the sessions, gives the claim up and closes the database
	// within one --shutdown-timeout, and says "stopped" only then.
	sd := &shutdown{c: c, log: log, out: io, db: db}
	defer func() { err = sd.run(ctx, err) }()

	// Only the server that owns the database may take its sessions up:
	// claim it before the plugins reattach, so a second server on the same
	// database touches no plugin process of the first. A node of a
	// cluster owns only its own sessions: it registers its name instead,
	// and a second process of that name is refused.
	owned, err := c.own(ctx, db, log)
	if err != nil {
		return err
	}
	sd.owned = &owned

	if c.configPath != "" {
		log.Info("configuration file read", "path", c.configPath, "plugins", len(c.plugins))
	}
	if len(c.tokenFlags) > 0 {
		log.Warn("a secret given as a flag shows in the process list, where every local user can read it: set PTYHOST_TOKEN, PTYHOST_READ_TOKEN, PTYHOST_CLUSTER_SECRET or PTYHOST_DB, or the configuration file's token, read_token, cluster_secret or db (chmod 600), instead", "flags", c.tokenFlags)
	}
	if c.tokenInFile {
		log.Warn("the configuration file holds the API token or the cluster secret and others can read it: chmod 600 it, or use PTYHOST_TOKEN and PTYHOST_CLUSTER_SECRET", "path", c.configPath)
	}
	if c.web && (!isASCII(c.token) || !isASCII(c.readToken)) {
		log.Warn("the API token or the read-only token has characters beyond ASCII, which a browser cannot send in a header: the browser page cannot use it (the command-line client can); a token such as the output of 'openssl rand -hex 16' works everywhere")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Load first reattaches to the plugin processes a previous server on
	// this data directory left running (their reattach records are in the
	// private socket directory), then starts the others in the background.
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: c.pluginDir, Plugins: c.plugins, Logger: log, Registerer: reg,
		SocketDir: filepath.Join(c.dataDir, "run"), OrphanTimeout: c.orphanTimeout})
	if err != nil {
		return fmt.Errorf("loading plugins: %w", err)
	}
	// stop is how this server ends, whatever ends it; from here every
	// path out goes through leave (the shutdown's), which leaves the
	// sessions running unless told to hang them up.
	stop := newStopper(ctx, c.hangUpOnStop)
	sd.plugins, sd.stop = plugins, stop

	relay, err := c.eventRelay(db)
	if err != nil {
		return err
	}
	m, err := core.New(core.Options{
		Store:           db,
		Plugins:         plugins,
		Logger:          log,
		Registerer:      reg,
		ScrollbackBytes: int(c.scrollback),
		IdleTimeout:     managerIdleTimeout(c.idleTimeout),
		Linger:          c.linger,
		Retention:       time.Duration(c.retention),
		WorkdirRoots:    c.workdirRoots,
		MaxClients:      c.maxClients,
		SizePolicy:      c.sizePolicy,
		NeverEnv:        c.neverEnv,

		// Recordings (core/recording.go).
		RecordingDir:      filepath.Join(c.dataDir, "recordings"),
		Record:            c.record,
		RecordInput:       c.recordInput,
		RecordingMaxBytes: int(c.recordMaxBytes),

		// Nodes (cluster.go): a single server lists itself.
		NodeName: c.cluster.nodeName,
		Nodes:    c.nodeLister(db),
		Self:     core.Node{URL: "http://" + ln.Addr().String(), Version: shared.Version()},
		Relay:    relay,

		HangUpUnknownKept: c.hangUpUnknown,
	})
	if err != nil {
		return err
	}
	sd.m = m
	logWorkdirRoots(log, c.workdirRoots)

	// Reconcile takes up the sessions the plugins kept (and logs how many)
	// and records the others a previous run left live as ERROR. It
	// refuses when the database knows none of the sessions kept, which
	// then run on in their plugins (keptunknown.go).
	if n, err := m.Reconcile(ctx); err != nil {
		return keptUnknownError(c, db, err)
	} else if n > 0 {
		log.Warn("sessions left live by a previous run were lost and recorded as ERROR server_lost", "count", n)
	}
	stop.tookUp()
	// A node lists as healthy from now on: the sessions of it recorded
	// node_lost that it took up run again, and the others are final.
	owned.ready(ctx)
	go stop.onLost(owned.lost, owned.node, log)

	mux := http.NewServeMux()
	mux.Handle("/", api.NewHandler(m, api.Options{
		Token:          c.token,
		ReadToken:      c.readToken,
		AllowedOrigins: c.allowedOrigins,
		AllowedHosts:   c.allowedHosts,
		Logger:         log,
		Stop:           stop.requestStop,
		Page:           c.page(),
		// Nodes (cluster.go): requests about another node's sessions
		// are forwarded to it.
		Cluster: api.ClusterOptions{NodeName: c.cluster.nodeName, Secret: c.cluster.secret},
	}))
	mux.Handle("GET /metrics", c.metricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cmp.Or(c.connIdleTimeout, defaultConnIdleTimeout),
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	sd.srv = srv
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := servingURL(c.listen, ln.Addr())
	log.Info("ptyhost serving", "url", url, "db", gormstore.RedactDSN(c.db), "plugin_dir", c.pluginDir, "allowed_hosts", c.allowedHosts)
	// The API answers from here on; the line says the plugins have started.
	if err := awaitPlugins(stop.ctx, plugins, m, log, c.pluginDir); err != nil {
		return err
	}
	if stop.ctx.Err() == nil {
		fmt.Fprintf(io.out, "ptyhost: serving on %s\n", url)
	}

	select {
	case err := <-served:
		return err
	case <-stop.ctx.Done():
	}
	return nil
}

// servingURL is the URL the serving lines show for the listener bound to
// bound from --listen's addr: the address bound, unless that is a
// wildcard, which Go may report as [::] however it was asked for (a
// listener on both families); then the host the operator gave (0.0.0.0,
// ::), with the port bound. A --listen with no host keeps [::].
func servingURL(addr string, bound net.Addr) string {
	b, ok := bound.(*net.TCPAddr)
	host, _, err := net.SplitHostPort(addr)
	if !ok || err != nil || host == "" || !b.IP.IsUnspecified() {
		return "http://" + bound.String()
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
		return "http://" + bound.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(b.Port))
}
