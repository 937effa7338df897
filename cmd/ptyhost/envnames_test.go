package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// --unset-env leaves out the spaces around each comma-separated name, and
// --unset-env and --env-var refuse a name no program can look up (spaces,
// control characters), for run and restart, with a usage error, before
// any server is reached.
func TestEnvVarNames(t *testing.T) {
	var u unsetEnvFlag
	if err := u.Set("TERM, COLORTERM ,X"); err != nil || !slices.Equal(u, unsetEnvFlag{"TERM", "COLORTERM", "X"}) {
		t.Errorf("--unset-env 'TERM, COLORTERM ,X': %q, %v; want the three names", u, err)
	}
	t.Setenv("PTYHOST_SERVER", "127.0.0.1:1")
	q := stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard}
	for _, args := range [][]string{
		{"run", "--unset-env", "A B", "--", "true"},
		{"run", "--unset-env", "TERM,", "--", "true"},
		{"run", "--unset-env", "A\tB", "--", "true"},
		{"run", "--env-var", " =1", "--", "true"},
		{"run", "--env-var", "A B=1", "--", "true"},
		{"run", "--env-var", "A\n=1", "--", "true"},
		{"restart", "--env-var", "A B=1", "0123"},
		{"restart", "--env-var", " A=1", "0123"},
	} {
		err := run(context.Background(), args, q)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "want") {
			t.Errorf("%q: %v; want a usage error saying what is wanted", args, err)
		}
	}
	e := envVarsFlag{}
	for _, ok := range []string{"A=1", "a.b=", "_X=a b"} {
		if err := e.Set(ok); err != nil {
			t.Errorf("--env-var %q: %v; want it taken", ok, err)
		}
	}
}
