package main

import (
	"fmt"
	"slices"

	"github.com/ptyhost/ptyhost/shared"
)

// checkRoots checks the paths of the daemon's machine that a session's
// container would bind mount — the worktree (req.Dir) and the config's
// mounts — against the host's working-directory roots
// (req.WorkdirRoots), before anything is created. A path outside them is
// an error wrapping shared.ErrPermissionDenied. When the daemon listens on
// a unix socket it runs on this machine, and the paths' symbolic links are
// resolved before the comparison; req.Dir and the mounts' sources are then
// replaced by the resolved paths, which is what the daemon mounts. A remote
// daemon's paths are compared as written, cleaned. Exec mode mounts
// nothing.
func checkRoots(d *daemon, cfg *config, req *shared.SpawnRequest) error {
	if len(req.WorkdirRoots) == 0 || cfg.execMode() {
		return nil
	}
	local := d.local()
	if req.Dir != "" {
		dir, err := shared.CheckUnderRoots(req.WorkdirRoots, req.Dir, local)
		if err != nil {
			return fmt.Errorf("worktree mount: %w", err)
		}
		req.Dir = dir
	}
	mounts := slices.Clone(cfg.Mounts)
	for i, m := range mounts {
		src, err := shared.CheckUnderRoots(req.WorkdirRoots, m.Source, local)
		if err != nil {
			return fmt.Errorf("environment config: mounts[%d]: %w", i, err)
		}
		mounts[i].Source = src
	}
	cfg.Mounts = mounts
	return nil
}
