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
// exits 1. arg must not be empty. Ended sessions count as the server still
// lists them, so a prefix may be ambiguous between a running session and
// an ended one until that one's record is pruned.
//
// A full id costs one GET; only a prefix lists the sessions.
func resolveSessionID(ctx context.Context, c *client, arg string) (string, error) {
	if arg == "" {
		return "", usageError{"a session ID must not be empty"}
	}
	_, err := c.getSession(ctx, arg)
	var ae *apiError
	switch {
	case err == nil:
		return arg, nil
	case !errors.As(err, &ae) || ae.Status != http.StatusNotFound:
		return "", err
	}
	raw, err := c.listSessionsRaw(ctx)
	if err != nil {
		return "", err
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
