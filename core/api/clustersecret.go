package api

import (
	"errors"
	"fmt"
	"net/http"
)

// A node whose cluster secret is not this node's refuses what this node
// forwards to it. The registry says so beforehand where it can (each
// node records a fingerprint of its secret: core.Node.ClusterSecret), and
// forwardTo then sends nothing (secretDiffers); where it cannot (a node
// from before the fingerprints), the node's 401 says so after
// (refusedSecret). Either way the client, whose token this node took,
// gets a 502 that says why, not a 401 that would read as its token's.

// secretDiffers is the 502's message for a request that node self would
// forward to node, whose cluster secret the registry says differs: one
// about session id, or, without an id, a create placed there.
func secretDiffers(node, self, id string) string {
	what := "where the new session was placed"
	if id != "" {
		what = "which runs this session"
	}
	return fmt.Sprintf("node %s, %s, has a cluster secret other than node %s's (the fingerprints the nodes registered differ), "+
		"so node %s does not forward to it: give every node the same --cluster-secret", node, what, self, self)
}

// errSecretRefused: the node a request was forwarded to answered 401. The
// forwarding node checked the client's token itself and sends the
// cluster secret instead of it, so the owner refused the secret.
var errSecretRefused = errors.New("the node refused the cluster secret")

// refusedSecret is a forwarding proxy's ModifyResponse: an owner's 401 is
// errSecretRefused, not an answer for the client.
func refusedSecret(res *http.Response) error {
	if res.StatusCode == http.StatusUnauthorized {
		return errSecretRefused
	}
	return nil
}
