// Command embed is an existing Go web server that adds ptyhost's terminal
// sessions to its own mux, with its own database, logger and authentication.
//
//	go run ./examples/embed -plugin-dir bin/plugins
//
// It starts the plugins, the core.Manager and its HTTP handler under
// /terminals/, behind the application's own authentication. On Ctrl-C the
// HTTP server shuts down, then the deferred calls close the Manager, which
// hangs up every session, and stop the plugins. docs/embedding.md walks
// through it.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/core/pluginhost"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	pluginDir := flag.String("plugin-dir", "bin/plugins", "ptyhost plugin binaries")
	dbPath := flag.String("db", "embed.db", "the application's SQLite database")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// The application's own database, logger and routes...
	db, err := gorm.Open(sqlite.Open(*dbPath), &gorm.Config{})
	check(err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("my app\n")) })

	// ...and ptyhost's core beside them.
	st, err := gormstore.New(db, gormstore.Options{Logger: log})
	check(err)
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: *pluginDir, Logger: log})
	check(err)
	defer plugins.Close()
	m, err := core.New(core.Options{Store: st, Plugins: plugins, Logger: log})
	check(err)
	defer m.Close(context.Background())
	// The plugins start in the background: wait for the one serving HOST.
	check(plugins.WaitType(ctx, "HOST"))
	_, err = m.EnsureEnvironment(ctx, core.Environment{ID: "host", Type: "HOST"})
	check(err)
	mux.Handle("/terminals/", http.StripPrefix("/terminals", requireUser(api.NewHandler(m, api.Options{Logger: log}))))

	ln, err := net.Listen("tcp", *listen)
	check(err)
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Info("serving", "addr", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		check(err)
	}
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

func check(err error) {
	if err != nil {
		slog.Error("embed", "err", err)
		os.Exit(1)
	}
}
