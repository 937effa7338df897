package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
)

// getEnvironment returns the environment with this id.
func (c *client) getEnvironment(ctx context.Context, id string) (*environment, error) {
	var e environment
	if err := c.do(ctx, http.MethodGet, "/api/v1/environments/"+url.PathEscape(id), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// runDir is the worktree_path run sends for an environment of envType,
// given --cwd. Only a HOST environment runs on this machine: there the
// default is the current directory, and a relative --cwd is made absolute.
// Elsewhere (a container, a remote host) a local directory means nothing:
// the default is the environment's own, and --cwd is sent as written, so
// that "~/src" reaches an SSH host untouched. On Windows, where no server
// runs (errServeOnWindows), every environment is elsewhere.
func runDir(envType, cwd string) (string, error) {
	if envType != "HOST" || runtime.GOOS == "windows" {
		return cwd, nil
	}
	if cwd == "" {
		dir, err := os.Getwd()
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("the current directory no longer exists (it was deleted): cd to one that does, or give the session's directory with --cwd DIR")
		}
		return dir, err
	}
	dir, err := filepath.Abs(cwd)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--cwd %q is relative, and the current directory no longer exists (it was deleted): give an absolute --cwd", cwd)
	}
	return dir, err
}
