package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/ptyhost/ptyhost/core"
)

// ptyhost ls: which sessions run, as docker ps shows which containers do.

const lsHelp = `Usage: ptyhost ls [flags]

List the running sessions (STARTING, ACTIVE or IDLE); with -a, the ended
ones too (TERMINATED, ERROR), until their records are deleted ('ptyhost
prune', or the server's --retention). Columns:

  ID           the session's ID; commands taking an ID accept any unique
               prefix of it
  COMMAND      the command it runs, as created or last restarted (- for
               its environment's shell)
  ENVIRONMENT  the environment it runs in
  NODE         the node of a cluster that runs it (shown only when a
               session listed has one: a single server's have none)
  STATUS       ACTIVE (a writing client is attached, or none has left
               yet), IDLE (the last one left; viewers do not count),
               STARTING, TERMINATED or ERROR
  CLIENTS      how many clients are attached, viewers included
  SIZE         its terminal's size, COLSxROWS
  AGE          how long ago it was created (45s, 3m, 2h5m, 3d4h)
  IDLE         how long ago it last had input or output, to within 5s
               (- once ended)
  DETACHED     how long a running session has had no writing client (-
               while one is attached, or once ended)
  EXIT         its exit code, or the signal that killed it (- while it runs)
  REASON       why it ended, when the server says: the reason of an ERROR,
               or idle_timeout, say

--filter KEY=VALUE keeps the sessions that match; it is repeatable, and
the sessions must match one value of every key given:
  status=STATUS  STARTING, ACTIVE, IDLE, TERMINATED or ERROR (any case;
                 running means the first three, ended the last two;
                 several may be given, comma-separated); it selects ended
                 sessions without -a
  env=ID         the sessions of environment ID

-q prints only the IDs, one a line (for scripts: ptyhost ls -q --filter
env=dev | xargs -r ptyhost kill, which kills nothing when none match).
--json prints the server's JSON array of the sessions selected instead.

While the server's database is unavailable, it lists only the sessions it
holds in memory (those it runs, and those that ended on it moments ago);
ls lists them, with a warning on stderr.
`

// The statuses of running and of ended sessions.
var (
	runningStatuses = []core.Status{core.StatusStarting, core.StatusActive, core.StatusIdle}
	endedStatuses   = []core.Status{core.StatusTerminated, core.StatusError}
)

// filterStatuses returns the statuses a name in --filter status= stands
// for: a status in any case, or running or ended.
func filterStatuses(name string) ([]core.Status, bool) {
	switch name = strings.ToUpper(strings.TrimSpace(name)); name {
	case "RUNNING":
		return runningStatuses, true
	case "ENDED":
		return endedStatuses, true
	}
	st := core.Status(name)
	if slices.Contains(runningStatuses, st) || slices.Contains(endedStatuses, st) {
		return []core.Status{st}, true
	}
	return nil, false
}

// lsFilter is the repeatable --filter KEY=VALUE of ls.
type lsFilter struct {
	statuses []core.Status // any of them; none: every status
	envs     []string      // any of them; none: every environment
}

func (f *lsFilter) String() string { return "" }

func (f *lsFilter) Set(s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want status=STATUS or env=ID, got %q", s)
	}
	switch strings.ToLower(key) {
	case "status":
		for name := range strings.SplitSeq(val, ",") {
			sts, ok := filterStatuses(name)
			if !ok {
				return fmt.Errorf("status %q: want STARTING, ACTIVE, IDLE, TERMINATED, ERROR, running or ended", name)
			}
			for _, st := range sts {
				if !slices.Contains(f.statuses, st) {
					f.statuses = append(f.statuses, st)
				}
			}
		}
	case "env", "environment":
		if val == "" {
			return fmt.Errorf("%s: want an environment ID", key)
		}
		if !slices.Contains(f.envs, val) {
			f.envs = append(f.envs, val)
		}
	default:
		return fmt.Errorf("unknown filter %q: want status=STATUS or env=ID", key)
	}
	return nil
}

// query is the part of the filter the server applies: the statuses, and
// the environment when there is only one (the API takes one).
func (f *lsFilter) query() lsQuery {
	q := lsQuery{statuses: f.statuses}
	if len(f.envs) == 1 {
		q.environment = f.envs[0]
	}
	return q
}

// keep reports whether the filter keeps row. The server applies the
// statuses and a single environment already; keep applies the whole
// filter again, so that several environments work too.
func (f *lsFilter) keep(row lsRow) bool {
	return (len(f.statuses) == 0 || slices.Contains(f.statuses, row.Status)) &&
		(len(f.envs) == 0 || slices.Contains(f.envs, row.EnvironmentID))
}

// lsRow is a session as ls reads it: the server's session record, whose
// command (SessionRecord.Command) fills the COMMAND column.
type lsRow struct {
	core.SessionRecord
}

func runLs(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("ls", &cf)
	asJSON := falseFlag(fs, "json", "print the sessions as a JSON array")
	all := falseFlag(fs, "a", "list the ended sessions too")
	boolFlag(fs, all, "all", false, "list the ended sessions too")
	quiet := falseFlag(fs, "q", "print only the session IDs, one a line")
	var filter lsFilter
	fs.Var(&filter, "filter", "keep the sessions that match: `KEY=VALUE` is status=STATUS or env=ID; repeatable")
	pos, help, err := parseFlags(fs, lsHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("ls: unexpected argument %q (see 'ptyhost ls --help')", pos[0])}
	}
	if *asJSON && *quiet {
		return usageError{"ls: give -q or --json, not both"}
	}
	if len(filter.statuses) == 0 && !*all {
		filter.statuses = runningStatuses
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, partial, err := c.listSessionsQuery(ctx, filter.query())
	if err != nil {
		return err
	}
	if partial != "" {
		fmt.Fprintf(stdio.err, "ptyhost: warning: the list holds only the sessions the server has in memory: %s\n", printableMessage(partial))
	}
	var raws []json.RawMessage
	if err := unmarshalArray(raw, &raws); err != nil {
		return fmt.Errorf("bad response from server: %w", err)
	}
	kept, rows := []json.RawMessage{}, []lsRow{}
	for _, r := range raws {
		var row lsRow
		if err := json.Unmarshal(r, &row); err != nil {
			return fmt.Errorf("bad response from server: %w", err)
		}
		if filter.keep(row) {
			kept, rows = append(kept, r), append(rows, row)
		}
	}
	switch {
	case *asJSON:
		b, err := json.Marshal(kept)
		if err != nil {
			return err
		}
		return printJSONArray(stdio.out, b)
	case *quiet:
		var b strings.Builder
		for _, row := range rows {
			b.WriteString(cell(row.ID) + "\n")
		}
		_, err := io.WriteString(stdio.out, b.String())
		return err
	}
	return printSessions(stdio.out, rows, time.Now())
}

// printSessions writes ls's table. The NODE column is there when a
// session has a node (a cluster's), so that a single server's table stays
// as it was.
func printSessions(w io.Writer, rows []lsRow, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	nodes := slices.ContainsFunc(rows, func(r lsRow) bool { return r.Node != "" })
	envCells := func(s lsRow) string { // ENVIRONMENT, and NODE after it when shown
		if !nodes {
			return cell(s.EnvironmentID)
		}
		return cell(s.EnvironmentID) + "\t" + orDash(cell(s.Node))
	}
	head := "ENVIRONMENT"
	if nodes {
		head += "\tNODE"
	}
	fmt.Fprintln(tw, "ID\tCOMMAND\t"+head+"\tSTATUS\tCLIENTS\tSIZE\tAGE\tIDLE\tDETACHED\tEXIT\tREASON")
	for _, s := range rows {
		exit := "-"
		switch {
		case s.ExitSignal != "":
			exit = s.ExitSignal
		case s.ExitCode != nil:
			exit = fmt.Sprint(*s.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%dx%d\t%s\t%s\t%s\t%s\t%s\n",
			cell(s.ID), commandCell(s.Command), envCells(s), cell(string(s.Status)), s.ActiveConnections,
			s.Cols, s.Rows, since(s.CreatedAt, now), idleFor(s.SessionRecord, now), detachedFor(s.SessionRecord, now),
			cell(exit), orDash(cell(s.StatusReason)))
	}
	return tw.Flush()
}

// maxCommandCell bounds the COMMAND column, in characters.
const maxCommandCell = 30

// commandCell is the COMMAND column: the arguments separated by spaces,
// those that hold a space or nothing quoted, cut to maxCommandCell with
// "…"; "-" when the server sent no command.
func commandCell(argv []string) string {
	if len(argv) == 0 {
		return "-"
	}
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsFunc(a, unicode.IsSpace) {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	s := []rune(cell(strings.Join(parts, " ")))
	if len(s) > maxCommandCell {
		s = append(s[:maxCommandCell-1], '…')
	}
	return string(s)
}

// since is the AGE column: how long ago t was, or "-" when unknown.
func since(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(t))
}
