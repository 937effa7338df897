package core

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The longest values of the free-text fields, in bytes. A name is a
// label for people; a project id names a project (a repository's path
// such as group/subgroup/project, a key, a UUID); a branch name is a git
// ref's name, whose each component git keeps within a file name's 255
// bytes: 1024 holds any a real repository uses.
const (
	MaxEnvironmentNameBytes = 256
	MaxProjectIDBytes       = 256
	MaxBranchNameBytes      = 1024
	// MaxWorktreePathBytes is Linux's PATH_MAX: a working directory
	// longer than that cannot be entered by its path.
	MaxWorktreePathBytes = 4096
)

// checkTextField refuses, with ErrInvalidArgument naming field, a value
// longer than max bytes, one that is not valid UTF-8, and one holding a
// control character (C0, DEL or C1): it is shown to people, by the CLI
// and the web page, where an escape sequence in it would act on their
// terminal.
func checkTextField(field, value string, max int) error {
	if len(value) > max {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d", ErrInvalidArgument, field, len(value), max)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, field)
	}
	for i, r := range value {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%w: %s holds a control character (%U at byte %d)", ErrInvalidArgument, field, r, i)
		}
	}
	return nil
}

// checkPath refuses, with ErrInvalidArgument naming field, a path longer
// than max bytes or holding a NUL byte, which no system call takes. Other
// control characters are a path's to hold.
func checkPath(field, value string, max int) error {
	if len(value) > max {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d", ErrInvalidArgument, field, len(value), max)
	}
	if i := strings.IndexByte(value, 0); i >= 0 {
		return fmt.Errorf("%w: %s holds a NUL byte (at byte %d)", ErrInvalidArgument, field, i)
	}
	return nil
}
