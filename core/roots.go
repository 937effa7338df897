package core

import (
	"github.com/ptyhost/ptyhost/shared"
)

// Working-directory roots
//
// Options.WorkdirRoots lists the directories a session may work in. When
// it is set, CreateSession checks a session's worktree_path against it
// before the plugin is asked, for every environment type: the path must be
// absolute, hold no ".." element, and lie under a root, else the create
// fails with an error wrapping shared.ErrPermissionDenied (HTTP 403) that
// says why. For HOST, the path is on this machine: its symbolic links are
// resolved first (it must exist), and the plugin gets the resolved path.
// For other types the path may be another machine's (a container's, a
// remote host's), so it is compared as written, cleaned. An empty
// worktree_path, the environment's default, is not checked.
//
// The plugins get the roots in shared.SpawnRequest.WorkdirRoots: those
// that give a session further paths of this machine (DOCKER's bind mounts)
// check them too.

// hostType is the environment type whose paths are this machine's.
const hostType = "HOST"

// workdir checks a session's working directory against the roots and
// returns the one to give the plugin.
func (m *Manager) workdir(envType, dir string) (string, error) {
	if dir == "" || len(m.opts.WorkdirRoots) == 0 {
		return dir, nil
	}
	return shared.CheckUnderRoots(m.opts.WorkdirRoots, dir, envType == hostType)
}
