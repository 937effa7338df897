package api

import (
	"net/http"

	"github.com/ptyhost/ptyhost/core"
)

// listNodes answers GET /api/v1/nodes: the nodes of the cluster this server
// belongs to, sorted by name, or this server alone (core.Manager.ListNodes).
func (h *handler) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := h.m.ListNodes(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if nodes == nil {
		nodes = []core.Node{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}

// removeNode answers DELETE /api/v1/nodes/{name}: 204 once the node is out
// of the cluster's registry (core.Manager.RemoveNode), 404 for a name no
// node has, 409 saying why while it may not be removed, and 400 on a
// single server, which has no registry.
func (h *handler) removeNode(w http.ResponseWriter, r *http.Request) {
	if err := h.m.RemoveNode(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
