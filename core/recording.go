package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// This file records sessions as asciicast v2 files
// (https://docs.asciinema.org/manual/asciicast/v2/), which asciinema's
// player plays: a header line, then one JSON array a line per event:
//
//	{"version":2,"width":80,"height":24,"timestamp":1764930000,"env":{"TERM":"xterm-256color"}}
//	[0.104512, "o", "hello\r\n"]
//	[1.5, "r", "100x30"]
//	[2.25, "i", "ls\r"]
//	[9.0, "m", "ptyhost: recording stopped: ..."]
//
// Times are seconds since the recording started. "o" is output, "r" a
// resize, "i" input (only with Options.RecordInput) and "m" a marker,
// which ptyhost writes when it had to leave something out.
//
// Output is recorded byte for byte, but asciicast stores text: an "o"
// event ends at a UTF-8 boundary, and a character split across two reads
// of the PTY is carried to the next event. A byte that is not part of
// valid UTF-8 is written as U+FFFD (what a terminal shows for it); the
// count of such bytes is logged when the recording ends.
//
// The session's output path never waits on the disk: it stamps the event
// and queues a copy of it (recorder.add); one goroutine per recording
// encodes the queue and writes it through a buffer, which it flushes
// whenever the queue is empty, so a download sees output within moments.
// A queue beyond recordQueueBytes (a disk that stalls), each event counted
// as its bytes and recEventOverhead so that many small events are bounded
// as well as a few large ones, drops the newest events and the writer says
// so with a marker event: "ptyhost: N events (B bytes) were dropped: the
// recording fell behind".
//
// A recording is bounded by Options.RecordingMaxBytes: of the output event
// that would pass it, what fits is written (cut at a character; another
// kind of event is left out); then a last marker ("ptyhost: recording
// stopped: it reached the limit of N bytes"), within the bound, and a log
// line say so. The session goes on unrecorded.
//
// Which sessions are recorded: CreateOptions.Record, else the
// environment's Record, else Options.Record. A session a new server takes
// up (Reconcile) is not recorded by it.

// ErrNoRecording is returned by OpenRecording for a session that has no
// recording.
var ErrNoRecording = errors.New("no recording")

// DefaultRecordingMaxBytes is Options.RecordingMaxBytes' default.
const DefaultRecordingMaxBytes = 64 << 20

// minRecordingMaxBytes is the least Options.RecordingMaxBytes: room for the
// header and the final marker.
const minRecordingMaxBytes = 4 << 10

// recordQueueBytes bounds the events queued for a recording's writer: their
// bytes and recEventOverhead for each.
const recordQueueBytes = 4 << 20

// recordingTERM is the TERM a recording's header names when the session's
// variables do not: the one the built-in plugins give a session.
const recordingTERM = "xterm-256color"

// validateRecording checks the recording options.
func (o Options) validateRecording() error {
	switch {
	case o.RecordingMaxBytes < 0:
		return fmt.Errorf("core: Options.RecordingMaxBytes must not be negative")
	case o.RecordingMaxBytes > 0 && o.RecordingMaxBytes < minRecordingMaxBytes:
		return fmt.Errorf("core: Options.RecordingMaxBytes must be at least %d", minRecordingMaxBytes)
	case (o.Record || o.RecordInput) && o.RecordingDir == "":
		return fmt.Errorf("core: Options.Record and RecordInput need Options.RecordingDir")
	}
	return nil
}

// recordingPath returns where session id's recording is, or "" when the
// manager records nothing. id is valid (validID): it holds no separator.
func (m *Manager) recordingPath(id string) string {
	if m.opts.RecordingDir == "" {
		return ""
	}
	return filepath.Join(m.opts.RecordingDir, id+".cast")
}

// checkRecordable refuses a session's or an environment's record setting
// of true on a server without a RecordingDir: ErrInvalidArgument.
func (m *Manager) checkRecordable(record *bool) error {
	if record != nil && *record && m.opts.RecordingDir == "" {
		return fmt.Errorf("%w: record: this server keeps no recordings", ErrInvalidArgument)
	}
	return nil
}

// wantsRecording says whether a session created with o in env is
// recorded: its own Record, else its environment's, else the server's
// Options.Record.
func (m *Manager) wantsRecording(o CreateOptions, env Environment) bool {
	switch {
	case o.Record != nil:
		return *o.Record
	case env.Record != nil:
		return *env.Record
	}
	return m.opts.Record
}

// startRecording creates the recording of s, about to run, when o and env
// ask for one (wantsRecording); nil otherwise, and when the file cannot be
// created (which is logged: the session runs unrecorded rather than not
// at all). A recording of an earlier session under the same id is
// replaced, or removed when this one is not recorded: it is not this
// session's to serve.
func (m *Manager) startRecording(s *session, o CreateOptions, env Environment) *recorder {
	if m.opts.RecordingDir == "" {
		return nil
	}
	if !m.wantsRecording(o, env) {
		m.removeRecording(s)
		return nil
	}
	term := recordingTERM
	if v, ok := o.Env["TERM"]; ok {
		term = v
	}
	r, err := newRecorder(m.recordingPath(s.id), recorderConfig{
		cols: o.Cols, rows: o.Rows, start: m.now(), term: term,
		input: m.opts.RecordInput, maxBytes: int64(m.opts.RecordingMaxBytes), log: s.log,
	})
	if err != nil {
		s.log.Warn("cannot record the session; it runs unrecorded", "err", err)
		m.removeRecording(s)
		return nil
	}
	return r
}

// removeRecording removes the recording an earlier session under s's id
// left, if any.
func (m *Manager) removeRecording(s *session) {
	if err := os.Remove(m.recordingPath(s.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("cannot remove the recording of an earlier session under this id", "err", err)
	}
}

// OpenRecording returns session id's recording, an asciicast v2 file, and
// its length: up to the end of its last complete line, so that a recording
// still being written reads as a valid file. A session that has none is
// ErrNoRecording; recordings outlive their sessions and servers, but not
// their records. The caller closes it.
//
// A recording whose session is neither in the map nor in the store is
// ErrNoRecording, and is removed (removeOrphanRecording): its record was
// deleted, in a cluster perhaps by another node's prune, and this node's
// sweep (PurgeEnded) may not have come round to its file yet. A store
// that cannot say is ErrStoreUnavailable, rather than a recording that
// may have been deleted.
func (m *Manager) OpenRecording(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	if err := validID(id); err != nil {
		return nil, 0, err
	}
	path := m.recordingPath(id)
	if path == "" {
		return nil, 0, fmt.Errorf("%w: this server records no sessions", ErrNoRecording)
	}
	if !m.isLive(id) {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		_, err := m.store.GetSession(sctx, id)
		cancel()
		if errors.Is(err, ErrSessionNotFound) {
			m.removeOrphanRecording(id)
			return nil, 0, fmt.Errorf("%w: no session %q (none was created, or its record was deleted)", ErrNoRecording, id)
		}
		if err != nil {
			return nil, 0, storeFailed(err)
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: session %q has no recording", ErrNoRecording, id)
	}
	if err != nil {
		return nil, 0, err
	}
	n, err := completeLines(f)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, 0, n), f}, n, nil
}

// completeLines returns the length of f up to the end of its last line.
func completeLines(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 4096)
	for end > 0 {
		n := min(end, int64(len(buf)))
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}
