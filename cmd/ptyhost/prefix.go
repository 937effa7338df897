package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Session ids on the command line: as docker does with container ids,
// every command that takes one accepts any unique prefix of it, so that
// the 20 characters of a generated id need not be typed. resolveSessionID
// turns what the user typed into the id the API needs.

// maxAmbiguousShown bounds how many matching ids an ambiguous prefix's
// message lists.
const maxAmbiguousShown = 5

// resolveSessionID returns the id of the session arg names: the session
// whose id is arg, else the one session whose id starts with arg. No
// session is an *apiError 404 ("session ARG not found", as attach says of
// a session that is gone); several are an error listing them. Either
// exits 1. The caller has checked arg with checkIDArg, before any
// request and with its own name; one that did not gets its refusal here,
// without the name. Ended sessions count as the server still
// lists them, so a prefix may be ambiguous between a running session and
// an ended one until that one's record is pruned.
//
// A full id costs one GET; only a prefix lists the sessions.
func resolveSessionID(ctx context.Context, c *client, arg string) (string, error) {
	if err := checkIDArg("", "session", arg); err != nil {
		return "", err
	}
	_, err := c.getSession(ctx, arg)
	var ae *apiError
	switch {
	case err == nil:
		return arg, nil
	case !errors.As(err, &ae) || ae.Status != http.StatusNotFound:
		return "", err
	}
	raw, partial, err := c.listSessionsRaw(ctx)
	if err != nil {
		return "", err
	}
	if partial != "" {
		// A prefix unique among some sessions may not be among all.
		return "", fmt.Errorf("session ID prefix %s cannot be resolved: the server lists only the sessions it has in memory (%s); give the whole ID", arg, partial)
	}
	var all []struct {
		ID string `json:"id"`
	}
	if err := unmarshalArray(raw, &all); err != nil {
		return "", fmt.Errorf("bad response from server: %w", err)
	}
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.ID
	}
	return matchPrefix(ids, arg)
}

// checkIDArg refuses, as a usageError before any request, an ID typed on
// the command line that can name no session or environment (kind): the
// empty one; "." and "..", which a URL path cannot hold (the server
// cleans /environments/. into /environments/, the list); and one with a
// '/', which no ID has. The server would answer each with a confusing
// error, or worse, another endpoint's answer. The message starts with
// cmd, the command's name ("kill", "env rm"), as the command's other
// usage errors do; "" for none (a caller that says more itself).
func checkIDArg(cmd, kind, id string) error { return checkPathArg(cmd, kind, "ID", id) }

// checkPathArg is checkIDArg for an argument that goes into a URL path as
// what (ID, or a plugin's name).
func checkPathArg(cmd, kind, what, id string) error {
	a := "a"
	if strings.ContainsAny(kind[:1], "aeiou") {
		a = "an"
	}
	var msg string
	switch {
	case id == "":
		msg = fmt.Sprintf("%s %s %s must not be empty", a, kind, what)
	case id == "." || id == "..":
		msg = fmt.Sprintf("%q is not %s %s %s: no %s is . or ..", id, a, kind, what, what)
	case strings.Contains(id, "/"):
		msg = fmt.Sprintf("%q is not %s %s %s: no %s has a '/'", id, a, kind, what, what)
	default:
		return nil
	}
	if cmd != "" {
		msg = cmd + ": " + msg
	}
	return usageError{msg}
}

// checkIDArgs is checkIDArg for each of ids, so that a command given
// several refuses them all before it acts on any.
func checkIDArgs(cmd, kind string, ids []string) error {
	for _, id := range ids {
		if err := checkIDArg(cmd, kind, id); err != nil {
			return err
		}
	}
	return nil
}

// matchPrefix returns the id among ids that is arg, else the only one
// that starts with arg.
func matchPrefix(ids []string, arg string) (string, error) {
	var matches []string
	for _, id := range ids {
		if id == arg {
			return id, nil
		}
		if strings.HasPrefix(id, arg) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return "", &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("session %s not found", arg)}
	case 1:
		return matches[0], nil
	}
	shown := strings.Join(matches[:min(len(matches), maxAmbiguousShown)], ", ")
	if more := len(matches) - maxAmbiguousShown; more > 0 {
		shown += fmt.Sprintf(" and %d more", more)
	}
	return "", fmt.Errorf("session ID prefix %s is ambiguous: %d sessions' IDs start with it (%s); type more of it", arg, len(matches), shown)
}
