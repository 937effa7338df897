package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// findPlugins maps the name of every plugin executable in dir
// (ptyhost-plugin-NAME) to its path.
func findPlugins(dir string) (map[string]string, error) {
	found := map[string]string{}
	if dir == "" {
		return found, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), ExecutablePrefix)
		if !ok || name == "" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if executable(path) != nil {
			continue
		}
		found[name] = path
	}
	return found, nil
}

// executable checks that path is an executable regular file (following
// symlinks).
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkExecutable(path, fi)
}

// checkExecutable checks that fi, the file at path, is a regular file with
// an execute bit.
func checkExecutable(path string, fi os.FileInfo) error {
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}
