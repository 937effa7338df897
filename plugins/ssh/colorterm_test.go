package main

// Issue 8, item 9: sessions get COLORTERM=truecolor next to TERM,
// overridable by the environment's and the session's env.

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// COLORTERM arrives by env request where sshd accepts it, by the export
// fallback where it does not (the test sshd's AcceptEnv lacks it), and the
// config's env and the session's env override it, in that order.
func TestColorTerm(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	env := loadSSH(t)
	// DEBUG2 logs the env requests sshd accepts ("Setting env").
	accepting := s.startPrivate(t, "AcceptEnv COLORTERM", "LogLevel DEBUG2")
	servers := []struct {
		name string
		port int
	}{{"refused", 0}, {"accepted", accepting.port}}
	cases := []struct {
		name       string
		configEnv  map[string]string
		sessionEnv map[string]string
		want       string
	}{
		{"default", nil, nil, "truecolor"},
		{"config", map[string]string{"COLORTERM": "24bit"}, nil, "24bit"},
		{"session", map[string]string{"COLORTERM": "24bit"}, map[string]string{"COLORTERM": ""}, ""},
	}
	for _, srv := range servers {
		for _, tc := range cases {
			t.Run(srv.name+"/"+tc.name, func(t *testing.T) {
				extra := map[string]any{}
				if tc.configEnv != nil {
					extra["env"] = tc.configEnv
				}
				req := request(fmt.Sprintf("colorterm-%s-%s", srv.name, tc.name), s.config(t, srv.port, extra),
					"/bin/sh", "-c", `printf '[%s|%s]\n' "$TERM" "${COLORTERM-unset}"`)
				req.Env = tc.sessionEnv
				p, err := env.Spawn(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				term := sharedtest.NewTerm(t, p)
				term.Expect(ctx, "[xterm-256color|"+tc.want+"]")
				term.Wait(ctx)
			})
		}
	}
	// The accepting sshd got COLORTERM by env request, with each value.
	log := accepting.logText()
	for _, tc := range cases {
		re := regexp.MustCompile(`(?m)Setting env \d+: COLORTERM=` + tc.want + `\r?$`)
		if !re.MatchString(log) {
			t.Errorf("the accepting sshd logged no env request COLORTERM=%s:\n%s", tc.want, log)
		}
	}
}
