package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ptyhost/ptyhost/core"
)

const nodesHelp = `Usage: ptyhost nodes [ls] [flags]
       ptyhost nodes rm [flags] NAME...

List the nodes of the cluster the server belongs to (several servers
sharing one PostgreSQL database; 'ptyhost serve --node-name'), sorted by
name: name, URL, whether it is healthy (its lease, renewed every few
seconds, has not expired), how many sessions run on it, and its version.
In a cluster, SECRET says whether the node's cluster secret is the one of
the node answering: same, differs, or unknown (a node of a ptyhost from
before the registry recorded it). A node whose secret differs gets no
session that node places, and a request for its sessions through that
node fails: the list then says so on stderr. A single server lists itself
alone, as "local", at the address it listens on. With --json, print the
server's JSON array of nodes instead.

Run 'ptyhost nodes rm --help' for removing a node gone for good.
`

const nodesRmHelp = `Usage: ptyhost nodes rm [flags] NAME...

Remove each node from the cluster's registry, so that 'ptyhost nodes' no
longer lists it: for a node taken out of the cluster for good. The server
removes a node only once it is gone: its lease has expired (stop it first;
no node can remove itself), and no session of it is recorded as running or
as node_lost, which the node would take up again if it came back (end each
for good with 'ptyhost kill ID'). Otherwise it refuses, saying which. The
records of the node's ended sessions stay. A node removed that is started
again registers again. A single server has no registry, and refuses.
Prints nothing on success.
`

// node is the API's node: core's own type.
type node = core.Node

func runNodes(ctx context.Context, args []string, stdio stdio) error {
	name := "nodes"
	if len(args) > 0 {
		switch args[0] {
		case "rm":
			return runNodesRm(ctx, args[1:], stdio)
		case "ls":
			name, args = "nodes ls", args[1:]
		case "help":
			_, err := fmt.Fprint(stdio.out, nodesHelp)
			return err
		}
	}
	var cf clientFlags
	fs := newFlagSet(name, &cf)
	asJSON := falseFlag(fs, "json", "print the nodes as a JSON array")
	pos, help, err := parseFlags(fs, nodesHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	switch {
	case len(pos) != 0 && name == "nodes" && (pos[0] == "rm" || pos[0] == "ls"):
		// Flags were given before the command, which reads its own.
		return usageError{fmt.Sprintf("nodes: the command %q comes first, before the flags: 'ptyhost nodes %s [flags]' (see 'ptyhost nodes --help')", pos[0], pos[0])}
	case len(pos) != 0 && name == "nodes":
		return usageError{fmt.Sprintf("nodes: unknown command %q (see 'ptyhost nodes --help')", pos[0])}
	case len(pos) != 0:
		return usageError{fmt.Sprintf("nodes ls: unexpected argument %q (see 'ptyhost nodes --help')", pos[0])}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.listNodesRaw(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSONArray(stdio.out, raw)
	}
	var nodes []node
	if err := unmarshalArray(raw, &nodes); err != nil {
		return fmt.Errorf("bad response from server: %w", err)
	}
	// SECRET is shown by a node of a cluster, whose listing compares the
	// nodes' cluster secrets (core.Node.ClusterSecret); a single server's
	// keeps its columns.
	withSecret := slices.ContainsFunc(nodes, func(n node) bool { return n.ClusterSecret != "" })
	tw := tabwriter.NewWriter(stdio.out, 0, 0, 2, ' ', 0)
	if withSecret {
		fmt.Fprintln(tw, "NAME\tURL\tHEALTHY\tSESSIONS\tVERSION\tSECRET")
	} else {
		fmt.Fprintln(tw, "NAME\tURL\tHEALTHY\tSESSIONS\tVERSION")
	}
	var differ []string
	for _, n := range nodes {
		healthy := "no"
		if n.Healthy {
			healthy = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s", cell(n.Name), orDash(cell(n.URL)), healthy, n.Sessions, orDash(cell(n.Version)))
		if withSecret {
			fmt.Fprintf(tw, "\t%s", orDash(cell(n.ClusterSecret)))
		}
		fmt.Fprintln(tw)
		if n.ClusterSecret == core.SecretDiffers {
			differ = append(differ, cell(n.Name))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch len(differ) {
	case 0:
	case 1:
		fmt.Fprintf(stdio.err, "ptyhost: the cluster secret of node %s differs from that of the node that answered: "+
			"it gets no session that node places, and requests for its sessions through that node fail; give every node the same --cluster-secret\n",
			differ[0])
	default:
		fmt.Fprintf(stdio.err, "ptyhost: the cluster secrets of nodes %s differ from that of the node that answered: "+
			"they get no session that node places, and requests for their sessions through that node fail; give every node the same --cluster-secret\n",
			strings.Join(differ, ", "))
	}
	return nil
}

// listNodesRaw returns the "nodes" array exactly as the server sent it.
func (c *client) listNodesRaw(ctx context.Context) (json.RawMessage, error) {
	var out struct {
		Nodes json.RawMessage `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &out); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

func runNodesRm(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("nodes rm", &cf)
	names, help, err := parseFlags(fs, nodesRmHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(names) == 0 {
		return usageError{"nodes rm: want at least one node NAME (see 'ptyhost nodes rm --help')"}
	}
	for _, n := range names {
		if err := checkPathArg("nodes rm", "node", "name", n); err != nil {
			return err
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return forEach(names, stdio, func(n string) error {
		if err := c.removeNode(ctx, n); err != nil {
			return fmt.Errorf("nodes rm %s: %w", n, err)
		}
		return nil
	})
}

// removeNode removes node name from the cluster's registry.
func (c *client) removeNode(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/nodes/"+url.PathEscape(name), nil, noContent{})
}
