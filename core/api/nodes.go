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
