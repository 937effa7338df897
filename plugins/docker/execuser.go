package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

// accountFileLimit bounds how much of a container's /etc/passwd or
// /etc/group checkExecUser reads.
const accountFileLimit = 1 << 20

// checkExecUser fails with ErrInvalidArgument if the config's user, or
// its group, is a name the target container's /etc/passwd (or
// /etc/group) lacks. A daemon before Engine 28 only finds out when it
// starts the exec: the start then takes 10 s, the session's terminal
// shows the runtime's error, and the daemon reports the exec running
// for good, so that the session never ends. The runtime looks a name
// up the same way (a numeric id needs no entry); what the container
// changes between this check and the start is not seen.
func (s *session) checkExecUser(ctx context.Context, target string) error {
	user, group, _ := strings.Cut(s.cfg.User, ":")
	for _, c := range []struct{ name, file, kind string }{
		{user, "/etc/passwd", "user"},
		{group, "/etc/group", "group"},
	} {
		if c.name == "" || isNumeric(c.name) {
			continue
		}
		found, known, err := s.hasAccount(ctx, target, c.file, c.name)
		if err != nil {
			return err
		}
		if known && !found {
			return fmt.Errorf("%w: unable to find %s %s: no matching entries in %s of container %s",
				shared.ErrInvalidArgument, c.kind, c.name, c.file, s.cfg.Container)
		}
	}
	return nil
}

// hasAccount reports whether file, /etc/passwd or /etc/group in the
// container, has an entry named name. A file that is not there has none.
// known is false when the plugin cannot tell, and the runtime decides at
// the start: the file is a link (the daemon's archive holds the link,
// not what it points to, which the runtime reads), or larger than
// accountFileLimit.
func (s *session) hasAccount(ctx context.Context, target, file, name string) (found, known bool, err error) {
	res, err := s.d.api.CopyFromContainer(ctx, target, client.CopyFromContainerOptions{SourcePath: file})
	switch {
	case cerrdefs.IsNotFound(err):
		return false, true, nil
	case err != nil:
		return false, false, s.d.classify("read "+file, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	if err != nil {
		return false, false, s.d.classify("read "+file, fmt.Errorf("the daemon's archive: %w", err))
	}
	if hdr.Typeflag != tar.TypeReg {
		return false, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(tr, accountFileLimit+1))
	if err != nil {
		return false, false, s.d.classify("read "+file, fmt.Errorf("the daemon's archive: %w", err))
	}
	if len(data) > accountFileLimit {
		return false, false, nil
	}
	return hasEntry(data, name), true, nil
}

// hasEntry reports whether data, in the format of /etc/passwd or
// /etc/group (name:...), has a line for name.
func hasEntry(data []byte, name string) bool {
	for line := range bytes.Lines(data) {
		if n, _, ok := bytes.Cut(line, []byte(":")); ok && string(n) == name {
			return true
		}
	}
	return false
}

// isNumeric reports whether s is a decimal id.
func isNumeric(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
