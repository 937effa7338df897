package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestE2EServeKeepsInheritedFDs: a descriptor the server inherited
// without close-on-exec (`(exec 7<secret.txt; ptyhost serve)`) reaches
// neither the plugin (the session's parent) nor the session.
func TestE2EServeKeepsInheritedFDs(t *testing.T) {
	fd := strconv.Itoa(inheritableFD(t))
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`for p in self $PPID; do if [ -e /proc/$p/fd/` + fd + ` ]; then echo "$p:open"; else echo "$p:closed"; fi; done; ` +
			`echo "parent $(basename "$(readlink /proc/$PPID/exe)")"; sleep 60`}})
	term := srv.Attach(t, id)
	term.WaitOutput("parent ")
	term.WaitOutput("\r\n")
	out := string(term.Out)
	if !strings.Contains(out, "self:closed") || strings.Contains(out, ":open") || !strings.Contains(out, "parent ptyhost-plugin-host") {
		t.Errorf("the session says %q; want fd %s closed in it and in its parent, the host plugin", out, fd)
	}
}
