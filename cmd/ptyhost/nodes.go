package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/ptyhost/ptyhost/core"
)

const nodesHelp = `Usage: ptyhost nodes [flags]

List the nodes of the cluster the server belongs to (several servers
sharing one PostgreSQL database; 'ptyhost serve --node-name'), sorted by
name: name, URL, whether it is healthy (its lease, renewed every few
seconds, has not expired), how many sessions run on it, and its version.
A single server lists itself alone, as "local", at the address it listens
on. With --json, print the server's JSON array of nodes instead.
`

// node is the API's node: core's own type.
type node = core.Node

func runNodes(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("nodes", &cf)
	asJSON := fs.Bool("json", false, "print the nodes as a JSON array")
	pos, help, err := parseFlags(fs, nodesHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("nodes: unexpected argument %q (see 'ptyhost nodes --help')", pos[0])}
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
	tw := tabwriter.NewWriter(stdio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tURL\tHEALTHY\tSESSIONS\tVERSION")
	for _, n := range nodes {
		healthy := "no"
		if n.Healthy {
			healthy = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cell(n.Name), orDash(cell(n.URL)), healthy, n.Sessions, orDash(cell(n.Version)))
	}
	return tw.Flush()
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
