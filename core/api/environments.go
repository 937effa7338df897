package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ptyhost/ptyhost/core"
)

// The environments and plugins endpoints.

type environmentRequest struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Config      json.RawMessage `json:"config"`
	IdleTimeout string          `json:"idle_timeout"`
	UnsetEnv    []string        `json:"unset_env"`
	// Record is Environment.Record: true, false, or absent (or null) for
	// the server's setting.
	Record *bool `json:"record"`
	// Node and Nodes are Environment.Node and Environment.Nodes.
	Node  string   `json:"node"`
	Nodes []string `json:"nodes"`
}

func (h *handler) createEnvironment(w http.ResponseWriter, r *http.Request) {
	var req environmentRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	env, err := h.m.CreateEnvironment(r.Context(), core.Environment{ID: req.ID, Name: req.Name, Type: req.Type, Config: req.Config, IdleTimeout: req.IdleTimeout, UnsetEnv: req.UnsetEnv, Record: req.Record, Node: req.Node, Nodes: req.Nodes})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, env)
}

func (h *handler) listEnvironments(w http.ResponseWriter, r *http.Request) {
	envs, err := h.m.ListEnvironments(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if envs == nil {
		envs = []core.Environment{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": envs})
}

func (h *handler) getEnvironment(w http.ResponseWriter, r *http.Request) {
	env, err := h.m.GetEnvironment(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, env)
}

func (h *handler) deleteEnvironment(w http.ResponseWriter, r *http.Request) {
	if err := h.m.DeleteEnvironment(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// environmentUpdateRequest is the body of PUT /api/v1/environments/{id}.
// id and type may be sent back as they are (GET, edit, PUT), not changed.
type environmentUpdateRequest struct {
	ID     *string         `json:"id"`
	Name   *string         `json:"name"`
	Type   *string         `json:"type"`
	Config json.RawMessage `json:"config"`
	// IdleTimeout replaces the environment's; "" returns to the server's.
	IdleTimeout *string `json:"idle_timeout"`
	// UnsetEnv replaces the environment's; [] clears it.
	UnsetEnv *[]string `json:"unset_env"`
	// Record replaces the environment's: true or false; null returns to
	// the server's setting; absent leaves it.
	Record json.RawMessage `json:"record"`
	// Node replaces a HOST environment's node; "" gives it this node.
	Node *string `json:"node"`
	// Nodes replaces the nodes that serve the environment; [] clears it
	// (every node serves it); absent or null leaves it.
	Nodes *[]string `json:"nodes"`
	// Sent back from a GET; ignored (a string, whatever it says).
	CreatedAt *string `json:"created_at"`
	UpdatedAt *string `json:"updated_at"`
}

func (h *handler) updateEnvironment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req environmentUpdateRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.ID != nil && *req.ID != id {
		h.fail(w, r, fmt.Errorf("%w: id %q does not match the path's %q; an environment's id cannot change", core.ErrInvalidArgument, *req.ID, id))
		return
	}
	if req.Type != nil {
		env, err := h.m.GetEnvironment(r.Context(), id)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if *req.Type != env.Type {
			h.fail(w, r, fmt.Errorf("%w: type %q: an environment's type (%s) cannot change; create another environment", core.ErrInvalidArgument, *req.Type, env.Type))
			return
		}
	}
	u := core.EnvironmentUpdate{Name: req.Name, IdleTimeout: req.IdleTimeout, UnsetEnv: req.UnsetEnv, Node: req.Node, Nodes: req.Nodes}
	if len(req.Record) > 0 {
		var err error
		if u.Record, err = recordSetting(req.Record); err != nil {
			h.fail(w, r, err)
			return
		}
		u.SetRecord = true
	}
	if len(req.Config) > 0 {
		u.Config = req.Config
	}
	env, err := h.m.UpdateEnvironment(r.Context(), id, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, env)
}

func (h *handler) environmentHealth(w http.ResponseWriter, r *http.Request) {
	health, err := h.m.EnvironmentHealth(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, health)
}

func (h *handler) listPlugins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"plugins": h.m.ListPlugins()})
}

// restartPlugin answers 200 with the plugin once the restart is done
// (whether it runs again or not: see its state), or 202 while it is still
// starting when the request ends.
//
// Its body is empty or {}: it has no fields yet, and one this server does
// not know (or a body that is not an object) is 400 with nothing
// restarted, as for the other POSTs.
func (h *handler) restartPlugin(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		var req struct{}
		if err := decode(r, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	st, err := h.m.RestartPlugin(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if st.State == core.PluginStarting {
		code = http.StatusAccepted
	}
	writeJSON(w, code, st)
}
