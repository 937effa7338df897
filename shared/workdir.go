package shared

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WorkingDir resolves a session's working directory on the plugin's own
// machine: dir when it is an absolute path to an existing directory, the
// plugin user's home directory when dir is empty (or / when that is
// unknown). Other paths are refused with ErrInvalidArgument.
func WorkingDir(dir string) (string, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "/", nil
		}
		dir = home
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%w: working directory %q is not an absolute path", ErrInvalidArgument, dir)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%w: working directory %q does not exist", ErrInvalidArgument, dir)
	case err != nil:
		return "", fmt.Errorf("%w: working directory: %w", ErrInvalidArgument, err)
	case !fi.IsDir():
		return "", fmt.Errorf("%w: working directory %q is not a directory", ErrInvalidArgument, dir)
	}
	return dir, nil
}
