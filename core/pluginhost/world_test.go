package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// A manager and its HTTP API over real plugin processes, for the tests
// that follow plugins through to sessions.

// pluginWorld is a manager, over a SQLite store, and its HTTP API over
// real plugin processes.
type pluginWorld struct {
	p     *Plugins
	m     *core.Manager
	store *gormstore.DB
	srv   *httptest.Server
}

func newPluginWorld(t *testing.T, opts Options) *pluginWorld {
	t.Helper()
	ctx := pluginsContext(t)
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	w := &pluginWorld{p: p}
	if w.store, err = gormstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ptyhost.db"), gormstore.Options{}); err != nil {
		p.Close()
		t.Fatal(err)
	}
	w.m, err = core.New(core.Options{Store: w.store, Plugins: p, IdleTimeout: core.NoIdleTimeout})
	if err != nil {
		p.Close()
		w.store.Close()
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(api.NewHandler(w.m, api.Options{}))
	t.Cleanup(func() {
		w.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.m.Close(ctx); err != nil {
			t.Errorf("manager Close: %v", err)
		}
		p.Close()
		if err := w.store.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return w
}

// do sends a request to the API and returns the status code and the JSON
// object answered, if any.
func (w *pluginWorld) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch method {
	case "POST", "PUT", "PATCH":
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, out
}

func (w *pluginWorld) addEnv(t *testing.T, id, typ, config string) {
	t.Helper()
	code, body := w.do(t, "POST", "/api/v1/environments", fmt.Sprintf(`{"id":%q,"type":%q,"config":%s}`, id, typ, config))
	if code != 201 {
		t.Fatalf("creating environment %s: %d %v", id, code, body)
	}
}

// sessionOutput creates a session and returns all its output and its end.
func (w *pluginWorld) sessionOutput(ctx context.Context, t *testing.T, envID string, cmd ...string) (string, core.Frame) {
	t.Helper()
	rec, err := w.m.CreateSession(ctx, core.CreateOptions{EnvironmentID: envID, Command: cmd})
	if err != nil {
		t.Fatalf("CreateSession in %s: %v", envID, err)
	}
	a, err := w.m.Attach(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, out := nextFrame(t, a)
	return string(out), f
}

// nextFrame returns the next frame that is not output or resize, with the
// output that came before it.
func nextFrame(t *testing.T, a *core.Attachment) (core.Frame, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []byte
	buf := make([]byte, 4096)
	for {
		f, err := a.Next(ctx, buf)
		if err != nil {
			t.Fatalf("waiting for a frame: %v", err)
		}
		switch f.Kind {
		case core.FrameOutput:
			out = append(out, f.Data...)
		case core.FrameResize:
		default:
			return f, out
		}
	}
}
