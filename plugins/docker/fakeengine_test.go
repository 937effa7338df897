package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// fakeEngine is a fakeDaemon that also creates containers of any image,
// for tests of the start in image mode: image inspect, container create,
// attach, start, wait and stop. A container's process never runs: a
// started one runs until it is stopped or removed. The test makes the
// create or the start fail, or the create slow, with the hooks, set
// before it serves (startFakeEngine).
type fakeEngine struct {
	*fakeDaemon

	// createFail, if set, answers a create with an error: its status
	// code and message; code 0 lets the create succeed.
	createFail func(req fakeCreateRequest) (code int, msg string)
	// createDelay is how long a create takes before the container
	// exists; created receives its name once it does.
	createDelay time.Duration
	created     chan string
	// onCreate, if set, runs when a create arrives, before it is made.
	onCreate func()
	// startFail, if set, answers a start like createFail.
	startFail func(req fakeCreateRequest) (code int, msg string)

	emu sync.Mutex
	// emu protects the following.
	requests map[string]fakeCreateRequest // by container id
	order    []string                     // container ids, in creation order
}

// fakeCreateRequest is the body of a container create.
type fakeCreateRequest struct {
	container.Config
	HostConfig container.HostConfig
}

// direct reports whether the container would run pty-init (a direct
// terminal).
func (r fakeCreateRequest) direct() bool {
	return len(r.Entrypoint) > 0 && r.Entrypoint[0] == initPath
}

// mountSource returns the source of the bind mount at target, or "".
func (r fakeCreateRequest) mountSource(target string) string {
	i := slices.IndexFunc(r.HostConfig.Mounts, func(m mount.Mount) bool { return m.Target == target })
	if i < 0 {
		return ""
	}
	return r.HostConfig.Mounts[i].Source
}

// startFakeEngine serves a fake engine on a unix socket until the test
// ends, after configure, if not nil, has set its hooks.
func startFakeEngine(t *testing.T, configure func(fe *fakeEngine)) *fakeEngine {
	t.Helper()
	fe := &fakeEngine{fakeDaemon: newFakeDaemon(), created: make(chan string, 16), requests: map[string]fakeCreateRequest{}}
	fe.routes = fe.addRoutes
	if configure != nil {
		configure(fe)
	}
	serveFakeDaemon(t, fe.fakeDaemon)
	return fe
}

func (fe *fakeEngine) addRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /images/{name...}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"Id": "sha256:1", "Config": map[string]any{"Cmd": []string{"/bin/sh"}}})
	})
	mux.HandleFunc("POST /containers/create", fe.create)
	mux.HandleFunc("POST /containers/{id}/start", fe.start)
	mux.HandleFunc("POST /containers/{id}/attach", fe.attach)
	mux.HandleFunc("POST /containers/{id}/wait", fe.wait)
	mux.HandleFunc("POST /containers/{id}/stop", fe.stop)
}

// containerIDs returns the ids of the containers created so far, in order.
func (fe *fakeEngine) containerIDs() []string {
	fe.emu.Lock()
	defer fe.emu.Unlock()
	return slices.Clone(fe.order)
}

// request returns the create request of container id.
func (fe *fakeEngine) request(id string) fakeCreateRequest {
	fe.emu.Lock()
	defer fe.emu.Unlock()
	return fe.requests[id]
}

// left returns the ids of the containers created and not removed.
func (fe *fakeEngine) left() []string {
	removed := fe.removedIDs()
	return slices.DeleteFunc(fe.containerIDs(), func(id string) bool { return slices.Contains(removed, id) })
}

func (fe *fakeEngine) create(w http.ResponseWriter, r *http.Request) {
	var req fakeCreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if fe.createFail != nil {
		if code, msg := fe.createFail(req); code != 0 {
			apiError(w, code, "%s", msg)
			return
		}
	}
	if fe.onCreate != nil {
		fe.onCreate()
	}
	// The daemon goes on creating whether or not the client waits.
	time.Sleep(fe.createDelay)
	name := r.URL.Query().Get("name")
	fe.mu.Lock()
	fe.next++
	id := fmt.Sprintf("ctr%d", fe.next)
	fe.mu.Unlock()
	fe.emu.Lock()
	fe.requests[id] = req
	fe.order = append(fe.order, id)
	fe.emu.Unlock()
	fe.addContainer(&fakeContainer{ID: id, Name: name, Labels: req.Labels, Env: req.Env})
	select {
	case fe.created <- name:
	default:
	}
	reply(w, http.StatusCreated, container.CreateResponse{ID: id})
}

func (fe *fakeEngine) start(w http.ResponseWriter, r *http.Request) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.container(w, r)
	if c == nil {
		return
	}
	if fe.startFail != nil {
		if code, msg := fe.startFail(fe.request(c.ID)); code != 0 {
			apiError(w, code, "%s", msg)
			return
		}
	}
	c.Running, c.State = true, "running"
	w.WriteHeader(http.StatusNoContent)
}

func (fe *fakeEngine) stop(w http.ResponseWriter, r *http.Request) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.container(w, r)
	if c == nil {
		return
	}
	c.Running, c.State = false, "exited"
	w.WriteHeader(http.StatusNoContent)
}

// attach hijacks the connection, as the daemon's attach stream; it carries
// nothing.
func (fe *fakeEngine) attach(w http.ResponseWriter, r *http.Request) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if c := fe.container(w, r); c == nil {
		return
	}
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	fe.hijacked = append(fe.hijacked, conn)
	buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	buf.Flush()
}

// wait answers once the container has run and stopped, or is gone.
func (fe *fakeEngine) wait(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush() // the wait is registered
	ran := false
	for {
		fe.mu.Lock()
		c := fe.containers[id]
		running := c != nil && c.Running
		fe.mu.Unlock()
		ran = ran || running
		if c == nil || ran && !running {
			json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: 137})
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// noSuchNetwork fails every create as the daemon does for a network that
// does not exist.
func noSuchNetwork(fakeCreateRequest) (int, string) {
	return http.StatusNotFound, "network nosuchnet not found"
}

// noSuchUser fails every start as the daemon does for a user the image
// lacks.
func noSuchUser(fakeCreateRequest) (int, string) {
	return http.StatusInternalServerError, "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: unable to find user nosuch: no matching entries in passwd file: unknown"
}

// directOnly applies fail to direct terminals' containers only.
func directOnly(fail func(fakeCreateRequest) (int, string)) func(fakeCreateRequest) (int, string) {
	return func(req fakeCreateRequest) (int, string) {
		if !req.direct() {
			return 0, ""
		}
		return fail(req)
	}
}

// noInitExec fails a start as the runtime does when it cannot run
// pty-init.
func noInitExec(fakeCreateRequest) (int, string) {
	return http.StatusBadRequest, `failed to create task for container: OCI runtime create failed: runc create failed: unable to start container process: exec: "` + initPath + `": permission denied: unknown`
}

// noBindSource fails a create as a daemon in a VM does, which does not
// see the plugin's files.
func noBindSource(req fakeCreateRequest) (int, string) {
	return http.StatusBadRequest, `invalid mount config for type "bind": bind source path does not exist: ` + req.mountSource(socketPath)
}

// runtimeFailure fails a start with an error that names nothing.
func runtimeFailure(fakeCreateRequest) (int, string) {
	return http.StatusInternalServerError, "failed to create task for container: context canceled: unknown"
}
