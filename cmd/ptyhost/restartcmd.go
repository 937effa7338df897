package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

const restartHelp = `Usage: ptyhost restart [flags] ID...

Restart each session in place: its process is killed (its remaining output
is delivered) and a new one is started with the same command, variables,
working directory and initial input, under the same ID. Attached clients
stay attached and see the new process's output follow the old one's. ID may
be any unique prefix of a session's ID. A session that has ended cannot be
restarted: create it again with 'ptyhost run --id ID ...'. It prints the
whole ID of each session restarted, one a line.

Exit status: 0 when every session was restarted, 1 otherwise.
`

// restartSessionRequest is the body of POST /api/v1/sessions/{id}/restart.
type restartSessionRequest struct {
	Env map[string]string `json:"env,omitempty"`
}

func (c *client) restartSession(ctx context.Context, id string, req restartSessionRequest) (*session, error) {
	var s session
	if err := c.doWithin(ctx, spawnTimeout, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(id)+"/restart", req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// runRestart is `ptyhost restart ID...`; it prints each restarted
// session's id.
func runRestart(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("restart", &cf)
	envVars := envVarsFlag{}
	fs.Var(envVars, "env-var", "replace the session's environment variables with these, `K=V`; repeatable (default: keep the session's)")
	ids, help, err := parseFlags(fs, restartHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageError{"restart: want at least one session ID (see 'ptyhost restart --help')"}
	}
	if err := checkIDArgs("restart", "session", ids); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var req restartSessionRequest
	if len(envVars) > 0 {
		req.Env = envVars
	}
	return forEach(ids, stdio, func(arg string) error {
		id, err := resolveSessionID(ctx, c, arg)
		if err != nil {
			return fmt.Errorf("restart %s: %w", arg, err)
		}
		if _, err := c.restartSession(ctx, id, req); err != nil {
			return fmt.Errorf("restart %s: %w", id, err)
		}
		_, err = fmt.Fprintln(stdio.out, cell(id))
		return err
	})
}

// runSessionRequest is the body `ptyhost run` creates its session with:
// createSessionRequest and run's --input and --unset-env.
type runSessionRequest struct {
	createSessionRequest
	Input    string   `json:"input,omitempty"`
	UnsetEnv []string `json:"unset_env,omitempty"`
}

// createRunSession creates run's session. Without --input or --unset-env
// the request is createSession's, field for field.
func (c *client) createRunSession(ctx context.Context, req runSessionRequest) (*session, error) {
	if req.Input == "" && len(req.UnsetEnv) == 0 {
		return c.createSession(ctx, req.createSessionRequest)
	}
	var s session
	if err := c.doWithin(ctx, spawnTimeout, http.MethodPost, "/api/v1/sessions", req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// unsetEnvFlag is run's repeatable --unset-env NAME[,NAME...]; the
// spaces around a name are left out ('TERM, COLORTERM').
type unsetEnvFlag []string

func (u *unsetEnvFlag) String() string { return strings.Join(*u, ",") }

func (u *unsetEnvFlag) Set(s string) error {
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !usableEnvName(name) {
			return fmt.Errorf("%q: want variable names (no spaces, '=' or control characters), comma-separated", s)
		}
		*u = append(*u, name)
	}
	return nil
}

// envVarsFlag is the repeatable --env-var K=V of run and restart.
type envVarsFlag map[string]string

func (e envVarsFlag) String() string { return "" }

func (e envVarsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want K=V, got %q", s)
	}
	if !usableEnvName(k) {
		return fmt.Errorf("%q: want K=V with a variable name K without spaces or control characters", s)
	}
	e[k] = v
	return nil
}

// usableEnvName reports whether name can name a variable a program
// reads: not empty, without '=' (which ends a name), NUL, spaces or
// other control characters, which no shell or program looks a name up
// by. (The server's --never-env, which goes to every plugin, wants
// portable names, shared.PortableEnvName; a session's own variables may
// be any such name, as env(1) sets them.)
func usableEnvName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r == '=' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}
