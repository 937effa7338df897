package pluginlog

import (
	"errors"
	"os"
	"sync"
	"time"
)

// Stderr is a plugin process's stderr as its logger writes to it: the
// pipe to the server that started the process, until Redirect points it
// at the process's log file. It is safe for concurrent use.
type Stderr struct {
	mu sync.Mutex
	// mu protects the following.
	f    *os.File // the process's stderr (or a test's stand-in)
	path string   // the log file, once redirected
	size int64    // its size, as written through Write
}

// NewStderr returns the stderr f, not redirected yet.
func NewStderr(f *os.File) *Stderr { return &Stderr{f: f} }

// Write writes p, one line of the log. Once redirected, a line that would
// take the file past MaxSize empties it first.
func (s *Stderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != "" && s.size > 0 && s.size+int64(len(p)) > MaxSize {
		s.empty()
	}
	n, err := s.f.Write(p)
	if s.path != "" {
		s.size += int64(n)
	}
	return n, err
}

// Redirect points the stderr at the log file of this process in dir,
// the plugin socket directory, so that everything written to it from now
// on — the logger's lines, and what the runtime writes of a panic — is
// kept there for the next server. Later calls do nothing.
func (s *Stderr) Redirect(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != "" {
		return nil
	}
	if dir == "" {
		return errors.New("no plugin socket directory to keep the log in")
	}
	path := File(dir, os.Getpid())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := dup2(f, s.f); err != nil {
		return err
	}
	s.path, s.size = path, fi.Size()
	return nil
}

// empty truncates the log file and writes the line that says so. On
// failure the file grows on: the lines are not lost for it.
func (s *Stderr) empty() {
	if err := s.f.Truncate(0); err != nil {
		return
	}
	line := emptiedLine(s.size, time.Now())
	n, _ := s.f.Write(line)
	s.size = int64(n)
}
