package api

import (
	"fmt"
	"net/http"
)

// A node's --advertise-url may reach another node: copied from that
// node's configuration, or naming a machine since given to another node.
// The request forwarded there carries the right secret, so without a
// check that node would serve it as if it were the one meant: a create
// placed on the advertising node is refused as of an environment it does
// not serve ("create the session through any node's API", which the
// client did), a DELETE is a loop (508, "try again"). So each forwarded
// request names the node it is meant for (HeaderClusterNode), and
// another node that receives it refuses it with a 502 that names the
// advertise URL as the cause, and logs it. A request from a node of an
// older ptyhost names none and is served as before.

// misdirected answers 502 and reports true when r, forwarded with the
// valid cluster secret, is meant for another node than this one.
func (h *handler) misdirected(w http.ResponseWriter, r *http.Request) bool {
	meant := r.Header.Get(HeaderClusterNode)
	if meant == "" || meant == h.cl.name {
		return false
	}
	h.log.Error("a request forwarded to another node reached this node: that node's --advertise-url leads here",
		"meant_for", meant, "host", r.Host, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	writeError(w, http.StatusBadGateway, fmt.Sprintf("the request was forwarded to node %s at %s, but node %s answers there: "+
		"node %s's --advertise-url leads to another node; give each node the URL at which the others reach it", meant, r.Host, h.cl.name, meant))
	return true
}
