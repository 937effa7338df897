package shared

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// CheckUnderRoots checks that the path p of this machine lies under one of
// roots (SpawnRequest.WorkdirRoots) and returns it cleaned. With resolve,
// the symbolic links of p and of the roots are resolved before they are
// compared, so a link cannot lead out of a root, and the resolved path is
// returned; p must then exist. Without resolve the comparison is of the
// cleaned paths alone, for paths of another machine.
//
// Empty roots mean no restriction: p is returned as it was given, neither
// cleaned nor resolved, and none of the checks below but NUL's applies (a
// plugin that needs an absolute or existing path checks that itself).
//
// A path that is not absolute, holds a ".." element, or lies outside every
// root is an error wrapping ErrPermissionDenied that names the roots; one
// that holds NUL, or that resolve cannot find, wraps ErrInvalidArgument.
func CheckUnderRoots(roots []string, p string, resolve bool) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: path %q contains NUL", ErrInvalidArgument, p)
	}
	if len(roots) == 0 {
		return p, nil
	}
	switch {
	case !filepath.IsAbs(p):
		return "", fmt.Errorf("%w: %q is not an absolute path, so it cannot be checked against the working-directory roots (%s)",
			ErrPermissionDenied, p, strings.Join(roots, ", "))
	case slices.Contains(strings.Split(p, "/"), ".."):
		return "", fmt.Errorf("%w: %q holds a \"..\" element, which the working-directory roots (%s) do not allow",
			ErrPermissionDenied, p, strings.Join(roots, ", "))
	}
	clean := filepath.Clean(p)
	if resolve {
		real, err := filepath.EvalSymlinks(clean)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%w: %q does not exist", ErrInvalidArgument, p)
		case err != nil:
			return "", fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		clean = real
	}
	for _, root := range roots {
		root = filepath.Clean(root)
		if under(clean, root) {
			return clean, nil
		}
		if resolve {
			if real, err := filepath.EvalSymlinks(root); err == nil && under(clean, real) {
				return clean, nil
			}
		}
	}
	where := ""
	if resolve && clean != filepath.Clean(p) {
		where = fmt.Sprintf(" (it resolves to %s)", clean)
	}
	return "", fmt.Errorf("%w: %q is outside the working-directory roots%s; allowed: %s",
		ErrPermissionDenied, p, where, strings.Join(roots, ", "))
}

// under reports whether the clean path p is root or below it.
func under(p, root string) bool {
	if root == "/" {
		return true
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// CheckRoots checks a list of working-directory roots as a host takes it:
// absolute paths without NUL or "..". It does not require them to exist.
func CheckRoots(roots []string) error {
	for _, r := range roots {
		switch {
		case r == "" || !filepath.IsAbs(r):
			return fmt.Errorf("working-directory root %q is not an absolute path", r)
		case strings.ContainsRune(r, 0):
			return fmt.Errorf("working-directory root %q contains NUL", r)
		case slices.Contains(strings.Split(r, "/"), ".."):
			return fmt.Errorf("working-directory root %q holds a \"..\" element", r)
		}
	}
	return nil
}
