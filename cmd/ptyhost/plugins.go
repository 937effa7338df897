package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

const pluginsHelp = `Usage: ptyhost plugins [ls] [flags]
       ptyhost plugins restart [flags] NAME

List the server's environment plugins: name, version, state, the
environment types each serves, how often it was restarted, its executable's
SHA-256 (shortened; --json has it whole) and path. A plugin that is not
running is followed by the reason. With --json, print the server's JSON
array of plugins instead.

States:
  starting     its process is being started
  running      serving
  restarting   its process died; it is started again after a backoff
  failed       it did not start, or crashed too often in a short time
               (circuit open); 'ptyhost plugins restart NAME' tries again
  refused      not started on purpose: its checksum does not match its pin,
               it speaks another protocol version, or another plugin serves
               its type

Run 'ptyhost plugins restart --help' for restarting.
`

const pluginsRestartHelp = `Usage: ptyhost plugins restart [flags] NAME

Restart plugin NAME: its process is stopped (its sessions end, with reason
plugin_restarted), its crash count is reset (closing an open circuit), and
it is started again. Prints the plugin's new state; exits 1 when it does not
run again, with the reason.
`

// plugin is the API's plugin: core's own type.
type plugin = core.PluginStatus

func runPlugins(ctx context.Context, args []string, stdio stdio) error {
	name := "plugins"
	if len(args) > 0 {
		switch args[0] {
		case "restart":
			return runPluginsRestart(ctx, args[1:], stdio)
		case "ls":
			name, args = "plugins ls", args[1:]
		case "help":
			_, err := fmt.Fprint(stdio.out, pluginsHelp)
			return err
		}
	}
	var cf clientFlags
	fs := newFlagSet("plugins", &cf)
	asJSON := falseFlag(fs, "json", "print the plugins as a JSON array")
	pos, help, err := parseFlags(fs, pluginsHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	switch {
	case len(pos) != 0 && name == "plugins" && (pos[0] == "restart" || pos[0] == "ls"):
		// Flags were given before the command, which reads its own.
		return usageError{fmt.Sprintf("plugins: the command %q comes first, before the flags: 'ptyhost plugins %s [flags]' (see 'ptyhost plugins --help')", pos[0], pos[0])}
	case len(pos) != 0 && name == "plugins":
		return usageError{fmt.Sprintf("plugins: unknown command %q (see 'ptyhost plugins --help')", pos[0])}
	case len(pos) != 0:
		return usageError{fmt.Sprintf("plugins ls: unexpected argument %q (see 'ptyhost plugins --help')", pos[0])}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.listPluginsRaw(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSONArray(stdio.out, raw)
	}
	var plugins []plugin
	if err := unmarshalArray(raw, &plugins); err != nil {
		return fmt.Errorf("bad response from server: %w", err)
	}
	tw := tabwriter.NewWriter(stdio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tTYPES\tRESTARTS\tSHA256\tPATH")
	for _, p := range plugins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
			cell(p.Name), orDash(cell(p.Version)), cell(string(p.State)), orDash(cell(strings.Join(p.Types, ","))), p.Restarts, orDash(cell(shortSum(p.SHA256))), orDash(cell(p.Path)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range plugins {
		if why := pluginReason(p); why != "" {
			if _, err := fmt.Fprintf(stdio.out, "%s: %s\n", cell(p.Name), cell(why)); err != nil {
				return err
			}
		}
	}
	return nil
}

func runPluginsRestart(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("plugins restart", &cf)
	pos, help, err := parseFlags(fs, pluginsRestartHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"plugins restart: want exactly one plugin NAME (see 'ptyhost plugins restart --help')"}
	}
	if err := checkPathArg("plugins restart", "plugin", "name", pos[0]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	p, err := c.restartPlugin(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("plugins restart %s: %w", pos[0], err)
	}
	switch p.State {
	case core.PluginRunning:
		_, err = fmt.Fprintf(stdio.out, "%s: running (pid %d, restarts %d)\n", cell(p.Name), p.PID, p.Restarts)
		return err
	case core.PluginStarting:
		_, err = fmt.Fprintf(stdio.out, "%s: still starting; see 'ptyhost plugins'\n", cell(p.Name))
		return err
	default:
		return fmt.Errorf("plugin %s is %s: %s", p.Name, p.State, pluginReason(*p))
	}
}

// pluginReason says why a plugin is not running, or "".
func pluginReason(p plugin) string {
	switch {
	case p.State == core.PluginRestarting && p.NextAttempt != nil:
		return fmt.Sprintf("%s; next attempt at %s", p.Reason, p.NextAttempt.Local().Format(time.TimeOnly))
	default:
		return p.Reason
	}
}

// shortSum is the start of a checksum, enough to tell builds apart.
func shortSum(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listPluginsRaw returns the "plugins" array exactly as the server sent it.
func (c *client) listPluginsRaw(ctx context.Context) (json.RawMessage, error) {
	var out struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/plugins", nil, &out); err != nil {
		return nil, err
	}
	return out.Plugins, nil
}

func (c *client) restartPlugin(ctx context.Context, name string) (*plugin, error) {
	var p plugin
	if err := c.doWithin(ctx, pluginStartTimeout, http.MethodPost, "/api/v1/plugins/"+url.PathEscape(name)+"/restart", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
