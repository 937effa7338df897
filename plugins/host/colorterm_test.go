package main

import (
	"encoding/json"
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// Sessions get TERM=xterm-256color and COLORTERM=truecolor, which the
// environment's env and then the session's env override.
func TestTerminalEnvironment(t *testing.T) {
	env := loadHost(t)
	cases := []struct {
		name       string
		config     string
		sessionEnv map[string]string
		want       string
	}{
		{"defaults", ``, nil, "[xterm-256color|truecolor]"},
		{"config overrides", `{"env": {"COLORTERM": "24bit", "TERM": "screen"}}`, nil, "[screen|24bit]"},
		{"session overrides config", `{"env": {"COLORTERM": "24bit"}}`, map[string]string{"COLORTERM": ""}, "[xterm-256color|]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			req := request("colorterm-"+tc.name, "/bin/sh", "-c", `printf '[%s|%s]\n' "$TERM" "${COLORTERM-unset}"`)
			req.Config = json.RawMessage(tc.config)
			req.Env = tc.sessionEnv
			p, err := env.Spawn(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			term := sharedtest.NewTerm(t, p)
			term.Expect(ctx, tc.want)
		})
	}
}
