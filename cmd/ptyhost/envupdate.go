package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/ptyhost/ptyhost/core"
)

const envUpdateHelp = `Usage: ptyhost env update [flags] ID

Change environment ID and print its ID: each of --name, --config (or
--config-file), --idle-timeout, --node and --nodes given replaces the
environment's own; what is not given stays. --config replaces the whole
configuration (see 'ptyhost env show ID'), which the plugin checks first.
An environment's type cannot change. Sessions already running keep what
they started with; new sessions get the change.
`

func runEnvUpdate(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("env update", &cf)
	name := fs.String("name", "", "a new human-readable `NAME` (not empty)")
	config := fs.String("config", "", "the whole configuration, a `JSON` object")
	configFile := fs.String("config-file", "", "read the configuration from `FILE` (a JSON object, at most 1 MiB)")
	idle := fs.String("idle-timeout", "", "idle timeout of the environment's new sessions: a `DURATION` such as 90s or 1h, 0, never, or \"\" for the server's")
	node := fs.String("node", "", "in a cluster, the `NODE` whose machine a HOST environment is (\"\": the node that answers)")
	var nodes nameList
	fs.Var(&nodes, "nodes", "in a cluster, the `NODES` (comma-separated, or the flag repeated) that serve the environment (\"\": every node)")
	pos, help, err := parseFlags(fs, envUpdateHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"env update: want exactly one environment ID (see 'ptyhost env update --help')"}
	}
	if err := checkIDArg("env update", "environment", pos[0]); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var req environmentUpdateRequest
	if set["name"] {
		req.Name = name
	}
	if set["idle-timeout"] {
		if *idle != "" {
			if _, err := core.ParseIdleTimeout(*idle); err != nil {
				return usageError{fmt.Sprintf("env update: --idle-timeout %q: want a duration such as 90s or 1h, 0, never, or \"\"", *idle)}
			}
		}
		req.IdleTimeout = idle
	}
	if set["node"] {
		req.Node = node
	}
	if set["nodes"] {
		list := []string(nodes)
		if list == nil {
			list = []string{}
		}
		req.Nodes = &list
	}
	if req.Config, err = configFlags("env update", *config, *configFile); err != nil {
		return err
	}
	if req.Name == nil && req.IdleTimeout == nil && req.Config == nil && req.Node == nil && req.Nodes == nil {
		return usageError{"env update: nothing to change: give --name, --config, --config-file, --idle-timeout, --node or --nodes"}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var e environment
	if err := c.do(ctx, http.MethodPut, "/api/v1/environments/"+url.PathEscape(pos[0]), req, &e); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdio.out, cell(e.ID))
	return err
}

// environmentUpdateRequest is the body of PUT /api/v1/environments/{id}:
// the fields to change.
type environmentUpdateRequest struct {
	Name        *string         `json:"name,omitempty"`
	Config      json.RawMessage `json:"config,omitempty"`
	IdleTimeout *string         `json:"idle_timeout,omitempty"`
	Node        *string         `json:"node,omitempty"`
	Nodes       *[]string       `json:"nodes,omitempty"`
}

const envHealthHelp = `Usage: ptyhost env health [flags] [ID...]

Ask the plugin of each environment (every one without an ID) whether
sessions can start there: the Docker daemon answers, the SSH host is
reachable. Prints ID, type, status (healthy, unhealthy, or unknown when
the plugin does not say) and the reason of an unhealthy one. With --json,
print the server's JSON objects in an array instead.

Exit status: 0 when none is unhealthy, 1 when one is or a check failed.
`

func runEnvHealth(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("env health", &cf)
	asJSON := falseFlag(fs, "json", "print the health reports as a JSON array")
	ids, help, err := parseFlags(fs, envHealthHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if err := checkIDArgs("env health", "environment", ids); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		raw, err := c.listEnvironmentsRaw(ctx)
		if err != nil {
			return err
		}
		var envs []environment
		if err := unmarshalArray(raw, &envs); err != nil {
			return fmt.Errorf("bad response from server: %w", err)
		}
		for _, e := range envs {
			ids = append(ids, e.ID)
		}
	}
	raws := []json.RawMessage{}
	var reports []core.EnvironmentHealth
	err = forEach(ids, stdio, func(id string) error {
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/api/v1/environments/"+url.PathEscape(id)+"/health", nil, &raw); err != nil {
			return fmt.Errorf("env health %s: %w", id, err)
		}
		var h core.EnvironmentHealth
		if err := json.Unmarshal(raw, &h); err != nil {
			return fmt.Errorf("env health %s: bad response from server: %w", id, err)
		}
		raws, reports = append(raws, raw), append(reports, h)
		return nil
	})
	if *asJSON {
		b, merr := json.Marshal(raws)
		if merr != nil {
			return merr
		}
		if perr := printJSONArray(stdio.out, b); perr != nil {
			return perr
		}
	} else {
		tw := tabwriter.NewWriter(stdio.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tREASON")
		for _, h := range reports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(h.EnvironmentID), cell(h.Type), cell(string(h.Status)), orDash(cell(h.Reason)))
		}
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
	}
	if err != nil {
		return err
	}
	var sick []string
	for _, h := range reports {
		if h.Status == core.HealthUnhealthy {
			sick = append(sick, h.EnvironmentID)
		}
	}
	if len(sick) > 0 {
		return fmt.Errorf("unhealthy: %s", strings.Join(sick, ", "))
	}
	return nil
}
