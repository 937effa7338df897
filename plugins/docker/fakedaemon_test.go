package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeDaemon stands in for dockerd where a test needs no container to
// run: it serves enough of the Engine API for pings, the orphan sweep
// (list, remove, kill) and exec mode (inspect, stat, exec create, start,
// attach, inspect, resize), on a unix socket (startFakeDaemon) or any
// listener (handler).
//
// It runs no process. A container is a record of its state, labels,
// environment and the paths that exist in it. A session's exec is a record
// whose process the test ends (endExec); the processes the session left in
// the background are records holding its PTYHOST_EXEC token (addProc).
// The plugin's signal helper (an exec of signalExec) is interpreted as
// the script would run: HUP ends the token's processes that do not ignore
// it, KILL every one, 0 none, and it exits 0 if any process had the token.
type fakeDaemon struct {
	host string // the address for a config's "host": unix://…

	mu sync.Mutex
	// mu protects the following.
	containers map[string]*fakeContainer // by id and by name
	execs      map[string]*fakeExec
	procs      []*fakeProc
	signals    []string   // the signals of the helper execs, in order
	removed    []string   // the ids of the containers removed
	hijacked   []net.Conn // attach streams, closed at cleanup
	conns      int        // connections accepted
	next       int

	// routes adds to the API served (fakeengine_test.go); set before
	// the daemon serves.
	routes func(mux *http.ServeMux)
	// execStartDelay holds the answer to a session's exec start, whose
	// process already runs, as a slow daemon would.
	execStartDelay time.Duration
	// onExecStart, if set, runs when a session's exec start arrives,
	// before its answer (with fd.mu held).
	onExecStart func()
}

// fakeContainer is a container of the fake daemon.
type fakeContainer struct {
	ID, Name string
	Running  bool
	State    string // for the list: running, exited
	Labels   map[string]string
	Env      []string
	Paths    map[string]os.FileMode // what exists in it, for stat
}

// fakeExec is an exec of the fake daemon.
type fakeExec struct {
	id, container string
	req           container.ExecCreateRequest
	running       bool
	code          int
	conn          net.Conn  // a session's attach stream while it runs
	proc          *fakeProc // the exec'd process of a session's exec
}

// fakeProc is a process of a session, found by its token.
type fakeProc struct {
	token     string
	ignoreHUP bool
	alive     bool
	exec      *fakeExec // the exec it is the process of, or nil
}

// startFakeDaemon serves a fake daemon on a unix socket until the test
// ends.
func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	fd := newFakeDaemon()
	serveFakeDaemon(t, fd)
	return fd
}

// serveFakeDaemon serves fd on a unix socket until the test ends.
func serveFakeDaemon(t *testing.T, fd *fakeDaemon) {
	t.Helper()
	// Not t.TempDir: a socket's path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "fakedockerd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fd.host = "unix://" + sock
	srv := fd.server()
	go srv.Serve(ln)
	t.Cleanup(func() { fd.close(srv) })
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{containers: map[string]*fakeContainer{}, execs: map[string]*fakeExec{}}
}

// server returns an http.Server of the fake daemon that counts the
// connections it accepts; close shuts it down.
func (fd *fakeDaemon) server() *http.Server {
	return &http.Server{Handler: fd.handler(), ConnState: fd.connState}
}

func (fd *fakeDaemon) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		fd.mu.Lock()
		fd.conns++
		fd.mu.Unlock()
	}
}

// close shuts srv down and closes the attach streams it hijacked.
func (fd *fakeDaemon) close(srv *http.Server) {
	srv.Close()
	fd.mu.Lock()
	defer fd.mu.Unlock()
	for _, c := range fd.hijacked {
		c.Close()
	}
}

// addContainer adds c, found by its id and its name.
func (fd *fakeDaemon) addContainer(c *fakeContainer) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if c.State == "" {
		c.State = "exited"
		if c.Running {
			c.State = "running"
		}
	}
	fd.containers[c.ID] = c
	if c.Name != "" {
		fd.containers[c.Name] = c
	}
}

// sessionExec returns the id, the token and the request of the last exec
// created that is not the signal helper; it fails the test if there is
// none.
func (fd *fakeDaemon) sessionExec(t *testing.T) (id, token string, req container.ExecCreateRequest) {
	t.Helper()
	fd.mu.Lock()
	defer fd.mu.Unlock()
	var last *fakeExec
	for _, e := range fd.execs {
		if !isHelper(e.req) && (last == nil || execNumber(e.id) > execNumber(last.id)) {
			last = e
		}
	}
	if last == nil {
		t.Fatal("the plugin created no session exec")
	}
	return last.id, tokenOf(last.req.Env), last.req
}

// addProc adds a background process of the session with token.
func (fd *fakeDaemon) addProc(token string, ignoreHUP bool) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.procs = append(fd.procs, &fakeProc{token: token, ignoreHUP: ignoreHUP, alive: true})
}

// endExec ends the exec'd process of a session's exec with code, as if
// it had exited: its attach stream ends.
func (fd *fakeDaemon) endExec(id string, code int) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if e := fd.execs[id]; e != nil && e.proc != nil && e.proc.alive {
		fd.die(e.proc, code)
	}
}

// alive counts the processes with token that still run.
func (fd *fakeDaemon) alive(token string) int {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	n := 0
	for _, p := range fd.procs {
		if p.token == token && p.alive {
			n++
		}
	}
	return n
}

// signalsSent returns the signals of the helper execs started so far.
func (fd *fakeDaemon) signalsSent() []string {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return slices.Clone(fd.signals)
}

// removedIDs returns the ids of the containers removed so far.
func (fd *fakeDaemon) removedIDs() []string {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return slices.Clone(fd.removed)
}

// connections counts the connections accepted so far.
func (fd *fakeDaemon) connections() int {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.conns
}

// die ends p with code, and its exec if it is one's process. mu must be
// held.
func (fd *fakeDaemon) die(p *fakeProc, code int) {
	p.alive = false
	if e := p.exec; e != nil {
		e.running, e.code = false, code
		if e.conn != nil {
			e.conn.Close()
		}
	}
}

// isHelper reports whether an exec is the plugin's signal helper.
func isHelper(req container.ExecCreateRequest) bool {
	return len(req.Cmd) == 6 && req.Cmd[2] == signalExec
}

func tokenOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, execTokenVar+"="); ok {
			return v
		}
	}
	return ""
}

func execNumber(id string) int {
	var n int
	fmt.Sscanf(id, "exec%d", &n)
	return n
}

var apiVersionPrefix = regexp.MustCompile(`^/v[0-9.]+/`)

// handler serves the fake daemon's API, versioned or not.
func (fd *fakeDaemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", client.MaxAPIVersion)
		w.Header().Set("Ostype", "linux")
		fmt.Fprint(w, "OK")
	})
	mux.HandleFunc("GET /containers/json", fd.list)
	mux.HandleFunc("GET /containers/{id}/json", fd.inspect)
	mux.HandleFunc("HEAD /containers/{id}/archive", fd.stat)
	mux.HandleFunc("DELETE /containers/{id}", fd.remove)
	mux.HandleFunc("POST /containers/{id}/kill", fd.kill)
	mux.HandleFunc("POST /containers/{id}/exec", fd.execCreate)
	mux.HandleFunc("POST /exec/{id}/start", fd.execStart)
	mux.HandleFunc("GET /exec/{id}/json", fd.execInspect)
	mux.HandleFunc("POST /exec/{id}/resize", func(http.ResponseWriter, *http.Request) {})
	if fd.routes != nil {
		fd.routes(mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = apiVersionPrefix.ReplaceAllString(r.URL.Path, "/")
		r.URL.RawPath = ""
		mux.ServeHTTP(w, r)
	})
}

func apiError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": fmt.Sprintf(format, args...)})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// container returns the container named by the request's id. mu must be
// held.
func (fd *fakeDaemon) container(w http.ResponseWriter, r *http.Request) *fakeContainer {
	c := fd.containers[r.PathValue("id")]
	if c == nil {
		apiError(w, http.StatusNotFound, "No such container: %s", r.PathValue("id"))
	}
	return c
}

func (fd *fakeDaemon) list(w http.ResponseWriter, r *http.Request) {
	var filters map[string]map[string]bool
	if f := r.URL.Query().Get("filters"); f != "" {
		if err := json.Unmarshal([]byte(f), &filters); err != nil {
			apiError(w, http.StatusBadRequest, "filters: %v", err)
			return
		}
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	items := []container.Summary{}
	seen := map[string]bool{}
	for _, c := range fd.containers {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		match := true
		for label := range filters["label"] {
			k, v, hasValue := strings.Cut(label, "=")
			got, ok := c.Labels[k]
			if !ok || hasValue && got != v {
				match = false
			}
		}
		if match {
			items = append(items, container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Labels: c.Labels, State: container.ContainerState(c.State)})
		}
	}
	reply(w, http.StatusOK, items)
}

func (fd *fakeDaemon) inspect(w http.ResponseWriter, r *http.Request) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	c := fd.container(w, r)
	if c == nil {
		return
	}
	reply(w, http.StatusOK, container.InspectResponse{
		ID:     c.ID,
		Name:   "/" + c.Name,
		State:  &container.State{Running: c.Running, Status: container.ContainerState(c.State)},
		Config: &container.Config{Env: c.Env, Labels: c.Labels},
	})
}

func (fd *fakeDaemon) stat(w http.ResponseWriter, r *http.Request) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	c := fd.container(w, r)
	if c == nil {
		return
	}
	p := r.URL.Query().Get("path")
	mode, ok := c.Paths[p]
	if !ok {
		apiError(w, http.StatusNotFound, "Could not find the file %s in container %s", p, c.Name)
		return
	}
	b, _ := json.Marshal(container.PathStat{Name: filepath.Base(p), Mode: mode})
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
}

func (fd *fakeDaemon) remove(w http.ResponseWriter, r *http.Request) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	c := fd.container(w, r)
	if c == nil {
		return
	}
	delete(fd.containers, c.ID)
	delete(fd.containers, c.Name)
	fd.removed = append(fd.removed, c.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (fd *fakeDaemon) kill(w http.ResponseWriter, r *http.Request) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	c := fd.container(w, r)
	if c == nil {
		return
	}
	c.Running, c.State = false, "exited"
	w.WriteHeader(http.StatusNoContent)
}

func (fd *fakeDaemon) execCreate(w http.ResponseWriter, r *http.Request) {
	var req container.ExecCreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	c := fd.container(w, r)
	if c == nil {
		return
	}
	if !c.Running {
		apiError(w, http.StatusConflict, "container %s is not running", c.ID)
		return
	}
	fd.next++
	e := &fakeExec{id: fmt.Sprintf("exec%d", fd.next), container: c.ID, req: req}
	fd.execs[e.id] = e
	reply(w, http.StatusCreated, container.ExecCreateResponse{ID: e.id})
}

func (fd *fakeDaemon) execStart(w http.ResponseWriter, r *http.Request) {
	var req container.ExecStartRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	e := fd.execs[r.PathValue("id")]
	if e == nil {
		apiError(w, http.StatusNotFound, "No such exec instance: %s", r.PathValue("id"))
		return
	}
	if req.Detach {
		// Only the signal helper runs detached; it has ended on return.
		e.code = 0
		if isHelper(e.req) {
			e.code = fd.signal(e.req.Cmd[4], e.req.Cmd[5])
		}
		return
	}
	e.running = true
	e.proc = &fakeProc{token: tokenOf(e.req.Env), alive: true, exec: e}
	fd.procs = append(fd.procs, e.proc)
	if fd.onExecStart != nil {
		fd.onExecStart()
	}
	if d := fd.execStartDelay; d > 0 {
		fd.mu.Unlock()
		time.Sleep(d)
		fd.mu.Lock()
	}
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	fd.hijacked = append(fd.hijacked, conn)
	buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	buf.Flush()
	e.conn = conn
	if !e.proc.alive {
		conn.Close() // killed meanwhile
	}
}

// signal interprets the helper: it signals the processes with token and
// returns its exit code. mu must be held.
func (fd *fakeDaemon) signal(sig, token string) int {
	fd.signals = append(fd.signals, sig)
	found := 1
	for _, p := range fd.procs {
		if p.token != token || !p.alive {
			continue
		}
		found = 0
		switch {
		case sig == "KILL":
			fd.die(p, 128+9)
		case sig == "HUP" && !p.ignoreHUP:
			fd.die(p, 128+1)
		}
	}
	return found
}

func (fd *fakeDaemon) execInspect(w http.ResponseWriter, r *http.Request) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	e := fd.execs[r.PathValue("id")]
	if e == nil {
		apiError(w, http.StatusNotFound, "No such exec instance: %s", r.PathValue("id"))
		return
	}
	code := e.code
	reply(w, http.StatusOK, container.ExecInspectResponse{ID: e.id, ContainerID: e.container, Running: e.running, ExitCode: &code})
}
