package core

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The recorder: one session's asciicast v2 file, written by a goroutine of
// its own from a bounded queue (recording.go starts and opens them).

// recorderConfig is what a recording starts with.
type recorderConfig struct {
	cols, rows int
	start      time.Time // the header's timestamp
	term       string
	input      bool  // record input too
	maxBytes   int64 // the file's bound
	log        *slog.Logger
}

// recEvent is one queued event: its time since the start, its type ("o",
// "i", "r") and its data.
type recEvent struct {
	t    time.Duration
	kind byte
	data []byte
}

// recEventOverhead is what each queued event is charged against
// recordQueueBytes besides its data: its recEvent in the queue (40 bytes),
// its share of the queue's spare capacity, and its copy rounded up to an
// allocation size. Without it a trickle of one-byte reads (or keystrokes,
// with RecordInput) behind a stalled disk queued millions of events, each
// holding far more memory than the byte it was charged.
const recEventOverhead = 64

// recorder writes one session's recording. The session's goroutines call
// output, input and resize, which only queue; run, its own goroutine,
// writes. close ends it once the session's output has ended.
type recorder struct {
	started time.Time // monotonic: event times
	input   bool
	log     *slog.Logger

	mu      sync.Mutex // protects the following
	queue   []recEvent
	queued  int  // bytes charged for queue: each event's data and recEventOverhead
	dropped int  // events dropped since the writer last said so
	dropB   int  // their bytes
	closed  bool // close was called
	wake    chan struct{}
	done    chan struct{} // closed when run has ended

	// The writer's own, run's alone.
	f       *os.File
	w       *bufio.Writer
	written int64
	max     int64
	carry   []byte        // an incomplete UTF-8 sequence of the last output
	invalid int           // bytes written as U+FFFD
	full    bool          // the bound was reached
	failed  bool          // a write failed
	lastT   time.Duration // the last event's time: times never go back
}

// newRecorder creates the file at path (0600, its directory 0700), writes
// the header and starts the writer.
func newRecorder(path string, c recorderConfig) (*recorder, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := createRecordingFile(path)
	if err != nil {
		return nil, err
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultRecordingMaxBytes
	}
	r := &recorder{
		started: time.Now(),
		input:   c.input,
		log:     c.log,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		f:       f,
		w:       bufio.NewWriterSize(f, 64<<10),
		max:     c.maxBytes,
	}
	header, _ := json.Marshal(struct {
		Version   int               `json:"version"`
		Width     int               `json:"width"`
		Height    int               `json:"height"`
		Timestamp int64             `json:"timestamp"`
		Env       map[string]string `json:"env"`
	}{2, c.cols, c.rows, c.start.Unix(), map[string]string{"TERM": shortTerm(c.term)}})
	r.writeLine(append(header, '\n'))
	if err := r.w.Flush(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	go r.run()
	return r, nil
}

// maxTermBytes bounds the TERM the header names: a terminal type's name
// is a few bytes, and the header must stay far below the smallest bound
// (minRecordingMaxBytes), whatever a create's env says.
const maxTermBytes = 64

// shortTerm returns term cut to maxTermBytes, at a character.
func shortTerm(term string) string {
	if len(term) <= maxTermBytes {
		return term
	}
	n := maxTermBytes
	for n > 0 && !utf8.RuneStart(term[n]) {
		n--
	}
	return term[:n]
}

// createRecordingFile creates the file of a new recording at path (0600):
// a new file, not the old one truncated, since an earlier session's writer
// under this id may still write to the old one (close gave up on a slow
// disk), and goes on doing so where nobody reads. A variable for tests.
var createRecordingFile = func(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// output queues output bytes p. It copies p and never waits on the disk.
func (r *recorder) output(p []byte) { r.add('o', p) }

// recordInput queues input bytes p when the recording records input.
func (r *recorder) recordInput(p []byte) {
	if r.input {
		r.add('i', p)
	}
}

// resize queues a resize to cols×rows.
func (r *recorder) resize(cols, rows int) {
	r.add('r', []byte(strconv.Itoa(cols)+"x"+strconv.Itoa(rows)))
}

// add queues an event, or, when its charge (its bytes and
// recEventOverhead) would take the queue past recordQueueBytes, counts it
// and its bytes as dropped.
func (r *recorder) add(kind byte, p []byte) {
	e := recEvent{t: time.Since(r.started), kind: kind, data: bytes.Clone(p)}
	charge := len(p) + recEventOverhead
	r.mu.Lock()
	switch {
	case r.closed:
	case r.queued+charge > recordQueueBytes:
		r.dropped++
		r.dropB += len(p)
	default:
		r.queue = append(r.queue, e)
		r.queued += charge
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close ends the recording once what is queued is written, and closes the
// file. It waits for that recorderCloseWait at most: the session's exit
// waits for it, and a disk that does not answer must not hold the exit
// from its clients; the writer then finishes on its own. It is safe to
// call more than once.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(recorderCloseWait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.log.Warn("the session's recording is still being written: the disk is slow or stuck; the session's end goes on without it",
			"waited", recorderCloseWait)
	}
}

// recorderCloseWait bounds close's wait for the disk. A variable for tests.
var recorderCloseWait = 10 * time.Second

// run writes the queue until close.
func (r *recorder) run() {
	defer close(r.done)
	for {
		<-r.wake
		for {
			r.mu.Lock()
			q, dropped, dropB, closed := r.queue, r.dropped, r.dropB, r.closed
			r.queue, r.queued, r.dropped, r.dropB = nil, 0, 0, 0
			r.mu.Unlock()
			for _, e := range q {
				r.event(e)
			}
			if dropped > 0 {
				// The dropped events came after the queued ones; what is
				// carried will not be continued.
				r.flushCarry()
				r.marker(time.Since(r.started), fmt.Sprintf("ptyhost: %d events (%d bytes) were dropped: the recording fell behind", dropped, dropB))
			}
			if len(q) == 0 && dropped == 0 {
				if closed {
					r.finish()
					return
				}
				break
			}
		}
		if err := r.w.Flush(); err != nil {
			r.fail(err)
		}
	}
}

// event encodes and writes e; output is cut at UTF-8 boundaries.
func (r *recorder) event(e recEvent) {
	data := e.data
	if e.kind == 'o' {
		if len(r.carry) > 0 {
			data = append(r.carry, data...)
			r.carry = nil
		}
		if n := incompleteTail(data); n > 0 {
			r.carry = bytes.Clone(data[len(data)-n:])
			data = data[:len(data)-n]
		}
		if len(data) == 0 {
			return
		}
	}
	r.writeEvent(e.t, e.kind, data)
}

// writeEvent writes one event line, unless the bound forbids it, in which
// case it writes the final marker instead.
func (r *recorder) writeEvent(t time.Duration, kind byte, data []byte) {
	if r.full || r.failed {
		return
	}
	t = max(t, r.lastT)
	r.lastT = t
	text, invalid := validText(data)
	r.invalid += invalid
	line := eventLine(t, string(kind), text)
	if room := r.max - maxMarkerBytes - r.written; int64(len(line)) > room {
		r.full = true
		if kind == 'o' {
			// Record what fits of the output, cut at a character.
			if part := fitOutput(t, text, room); part != nil {
				r.writeLine(part)
			}
		}
		msg := fmt.Sprintf("ptyhost: recording stopped: it reached the limit of %d bytes", r.max)
		r.writeLine(eventLine(t, "m", msg))
		r.log.Warn("the session's recording reached its size limit; the rest of the session is not recorded", "limit", r.max)
		return
	}
	r.writeLine(line)
}

// fitOutput returns the longest "o" event line of a prefix of text, cut at
// a character, that is at most room bytes; nil when none is.
func fitOutput(t time.Duration, text string, room int64) []byte {
	if room <= 0 {
		return nil
	}
	n := int64(len(text))
	for n > 0 {
		n = min(n, room)
		for n > 0 && n < int64(len(text)) && !utf8.RuneStart(text[n]) {
			n-- // text[n] continues a character: cut before it
		}
		line := eventLine(t, "o", text[:n])
		if int64(len(line)) <= room {
			if n == 0 {
				return nil
			}
			return line
		}
		// Escapes made the line longer than its text: shrink the text
		// in proportion.
		n = min(n-1, n*room/int64(len(line)))
	}
	return nil
}

// maxMarkerBytes is room kept under the bound for the final marker.
const maxMarkerBytes = 128

// marker writes a marker event.
func (r *recorder) marker(t time.Duration, msg string) {
	r.writeEvent(t, 'm', []byte(msg))
}

// eventLine encodes one event: [t, kind, text] and a newline.
func eventLine(t time.Duration, kind, text string) []byte {
	data, _ := json.Marshal(text) // text is valid UTF-8
	b := make([]byte, 0, len(data)+32)
	b = append(b, '[')
	b = strconv.AppendFloat(b, t.Seconds(), 'f', 6, 64)
	b = append(b, `, "`...)
	b = append(b, kind...)
	b = append(b, `", `...)
	b = append(b, data...)
	return append(b, "]\n"...)
}

func (r *recorder) writeLine(b []byte) {
	if r.failed {
		return
	}
	n, err := r.w.Write(b)
	r.written += int64(n)
	if err != nil {
		r.fail(err)
	}
}

// fail stops the recording after a write error, which it logs once.
func (r *recorder) fail(err error) {
	if !r.failed {
		r.failed = true
		r.log.Warn("writing the session's recording failed; the rest of the session is not recorded", "err", err)
	}
}

// finish writes what is carried, flushes and closes the file.
func (r *recorder) finish() {
	r.flushCarry()
	if err := r.w.Flush(); err != nil {
		r.fail(err)
	}
	if err := r.f.Close(); err != nil {
		r.fail(err)
	}
	if r.invalid > 0 {
		r.log.Info("the session's output held bytes that are not UTF-8; its recording shows each as U+FFFD", "bytes", r.invalid)
	}
}

// flushCarry writes the incomplete character carried, if any, whose
// continuation will not come: its bytes are invalid.
func (r *recorder) flushCarry() {
	if len(r.carry) > 0 {
		r.writeEvent(r.lastT, 'o', r.carry)
		r.carry = nil
	}
}

// incompleteTail returns the length of the UTF-8 sequence p ends in that
// is a valid beginning but not yet a whole character; 0 when there is
// none.
func incompleteTail(p []byte) int {
	for n := 1; n <= min(len(p), utf8.UTFMax-1); n++ {
		b := p[len(p)-n]
		if b < 0x80 {
			return 0 // ASCII: nothing pending
		}
		if b >= 0xC0 { // a lead byte, n bytes from the end
			tail := p[len(p)-n:]
			if utf8.FullRune(tail) {
				return 0
			}
			// FullRune says a sequence that cannot become valid is
			// full; so an incomplete tail is a valid beginning.
			return n
		}
	}
	return 0
}

// validText returns p as valid UTF-8, each byte of an invalid sequence
// written as U+FFFD, and how many bytes were.
func validText(p []byte) (string, int) {
	if utf8.Valid(p) {
		return string(p), 0
	}
	var b []byte
	invalid := 0
	for len(p) > 0 {
		c, size := utf8.DecodeRune(p)
		if c == utf8.RuneError && size <= 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
			invalid++
		} else {
			b = append(b, p[:size]...)
		}
		p = p[size:]
	}
	return string(b), invalid
}
