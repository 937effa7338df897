package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ptyhost/ptyhost/shared"
)

// workdirRootsEnv holds the working-directory roots, separated by the OS's
// path-list separator (':' on Unix), as PATH does.
const workdirRootsEnv = "PTYHOST_WORKDIR_ROOTS"

// setWorkdirRoots settles the working-directory roots: the --workdir-root
// flags if given, else PTYHOST_WORKDIR_ROOTS if not empty, else the file's
// workdir_roots. Each must be an absolute path. An empty variable counts as
// unset, as every other one does, so that it cannot lift the file's
// restriction.
func (c *serveConfig) setWorkdirRoots(flagGiven bool, file *fileConfig) error {
	source := "--workdir-root"
	switch v := os.Getenv(workdirRootsEnv); {
	case flagGiven:
	case v != "":
		source = workdirRootsEnv
		c.workdirRoots = nil
		for _, r := range filepath.SplitList(v) {
			if r != "" {
				c.workdirRoots = append(c.workdirRoots, r)
			}
		}
		if len(c.workdirRoots) == 0 {
			// Separators alone would lift every restriction.
			return usageError{fmt.Sprintf("%s=%q lists no directory; unset it, or name the roots", workdirRootsEnv, v)}
		}
	case file != nil:
		source = file.path + ": workdir_roots"
		c.workdirRoots = file.workdirRoots // checked when loaded
	}
	if err := shared.CheckRoots(c.workdirRoots); err != nil {
		return usageError{fmt.Sprintf("%s: %v", source, err)}
	}
	return nil
}

// logWorkdirRoots says at start where sessions may work.
func logWorkdirRoots(log *slog.Logger, roots []string) {
	if len(roots) == 0 {
		log.Info("working directories are unrestricted: a session may work in, and a DOCKER environment mount, any directory; set --workdir-root to restrict them")
		return
	}
	log.Info("working directories restricted", "workdir_roots", roots)
}
