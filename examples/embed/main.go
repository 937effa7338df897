// Command embed is an existing Go web server that adds ptyhost's terminal
// sessions to its own mux, with its own database, logger and authentication.
//
//	go run ./examples/embed -plugin-dir bin/plugins
//
// It claims the database, starts the plugins and the core.Manager, takes up
// (or records as lost) the sessions of an earlier run with Reconcile, and
// serves the HTTP handler under /terminals/, behind the application's own
// authentication. On Ctrl-C or SIGTERM the HTTP server and the Manager stop
// together, then the plugins, then the claim, all within one deadline.
// docs/embedding.md walks through it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/core/pluginhost"
)

// stopTimeout bounds the whole shutdown: the HTTP server, the Manager's
// hang-up of every session and the plugins' SIGHUP→SIGKILL grace.
const stopTimeout = 10 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	pluginDir := flag.String("plugin-dir", "bin/plugins", "ptyhost plugin binaries")
	dbPath := flag.String("db", "embed.db", "the application's SQLite database")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, log, *listen, *pluginDir, *dbPath)
	stop()
	if err != nil {
		log.Error("embed", "err", err)
		os.Exit(1) // after run's deferred cleanups
	}
}

// run serves until ctx is done; every cleanup it defers has run when it
// returns.
func run(ctx context.Context, log *slog.Logger, listen, pluginDir, dbPath string) error {
	// The application's own database, logger and routes...
	db, err := gorm.Open(sqlite.Open(dbPath+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"), &gorm.Config{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("my app\n")) })

	// ...and ptyhost's core beside them. One server per database.
	st, err := gormstore.New(db, gormstore.Options{Logger: log})
	if err != nil {
		return err
	}
	claim, err := st.Claim(ctx, gormstore.Owner{DataDir: filepath.Dir(dbPath)})
	if err != nil {
		return fmt.Errorf("claim the database: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = claim.Release(ctx)
	}()
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: pluginDir, Logger: log})
	if err != nil {
		return err
	}
	// On an error before serving. Shutdown, Close and Detach of the
	// plugins and of the Manager act only the first time, so these
	// deferred calls do nothing after the stop at the end.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		plugins.Shutdown(ctx)
	}()
	m, err := core.New(core.Options{Store: st, Plugins: plugins, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = m.Close(ctx)
	}()
	// Sessions a previous run left live: an error means the store cannot
	// be read or written, so do not serve.
	n, err := m.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if n > 0 {
		log.Warn("sessions lost since the last run", "count", n)
	}
	// The plugins start in the background: wait for the one serving HOST.
	if err := plugins.WaitType(ctx, "HOST"); err != nil {
		return err
	}
	if _, err := m.EnsureEnvironment(ctx, core.Environment{ID: "host", Type: "HOST"}); err != nil {
		return err
	}
	mux.Handle("/terminals/", http.StripPrefix("/terminals", requireUser(api.NewHandler(m, api.Options{Logger: log}))))

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr())
	select {
	case err = <-served: // failed; nothing was shut down
	case <-ctx.Done():
	case <-claim.Lost():
		err = errors.New("lost the claim on the database")
	}

	// Stop the HTTP server and the manager together (Shutdown does not
	// wait for WebSockets, which m.Close closes), then the plugins; the
	// claim is released by its deferred call.
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	httpDone := make(chan struct{})
	go func() { defer close(httpDone); _ = srv.Shutdown(stopCtx) }()
	_ = m.Close(stopCtx)
	<-httpDone
	plugins.Shutdown(stopCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// requireUser stands for the application's own authentication.
func requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "demo" || pass != "demo" {
			w.Header().Set("WWW-Authenticate", `Basic realm="my app"`)
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
