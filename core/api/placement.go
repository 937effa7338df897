package api

import (
	"bytes"
	"io"
	"net/http"
)

// Placement of a new session (core.Manager.PlaceSession; docs/design.md,
// "Nodes"). POST /api/v1/sessions on any node of a cluster places the
// session on a node that serves its environment: this one creates it here,
// as a single server does; another one gets the request forwarded
// (forwardTo), whose answer, the same 201 with the session's node, goes
// back to the client as it is.

// bufferBody reads r's body (within limitBody's bound) and puts it back as
// a reader of those bytes, so that it can be decoded here and forwarded
// whole after. A body beyond the bound is an error wrapping
// *http.MaxBytesError, as decode's.
func bufferBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if rerr := readBodyError(err); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	rewind(r, b)
	return b, nil
}

// rewind makes body r's body again.
func rewind(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// placedElsewhere places the session that r, with body, creates in
// environment envID. It returns false when the session is to be created
// here: on a single server, on the node placement picks, and on a request
// another node forwarded. Else it has answered r: with the answer of the
// node it forwarded r to, or with the error of the placement (503 when no
// healthy node serves the environment, 404 for an unknown one).
func (h *handler) placedElsewhere(w http.ResponseWriter, r *http.Request, envID string, body []byte) bool {
	if forwarded(r) {
		return false
	}
	node, local, err := h.m.PlaceSession(r.Context(), envID)
	if err != nil {
		h.fail(w, r, err)
		return true
	}
	if local {
		return false
	}
	rewind(r, body)
	h.forwardTo(w, r, node)
	return true
}
