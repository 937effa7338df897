package pluginlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"time"
)

// Follow relays the lines of the log file of plugin process pid in dir,
// each to line, as they come (every interval), until ctx ends. Where it
// left off is kept beside the file: what came after is relayed by Drain
// once the process has exited, or by the next server's Follow; a file
// emptied since is relayed from its start.
func Follow(ctx context.Context, dir string, pid int, interval time.Duration, line func([]byte)) {
	r := newReader(File(dir, pid))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.relay(line, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain relays what is left of the log file of plugin process pid in dir,
// which has exited, a last line without its newline too, and removes the
// file.
func Drain(dir string, pid int, line func([]byte)) {
	newReader(File(dir, pid)).relay(line, true)
	Remove(dir, pid)
}

// pos is where a server left off in a log file: the offset after the
// last line it relayed, and the file's first line then, which tells
// whether the plugin emptied the file since.
type pos struct {
	Offset int64  `json:"offset"`
	Head   string `json:"head"`
}

// reader relays a log file's lines from where the last one left off.
type reader struct {
	path string
	at   pos
}

func newReader(path string) *reader {
	r := &reader{path: path}
	if b, err := os.ReadFile(posFile(path)); err == nil {
		var at pos
		if json.Unmarshal(b, &at) == nil && at.Offset >= 0 {
			r.at = at
		}
	}
	return r
}

// maxHead bounds the first line kept to tell an emptied file.
const maxHead = 512

// relay hands line each whole line of the file after where it left off,
// and, when final, a last one without its newline, and notes where it is.
func (r *reader) relay(line func([]byte), final bool) {
	f, err := openLog(r.path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	head := firstLine(f)
	if head != r.at.Head || fi.Size() < r.at.Offset {
		r.at.Offset = 0 // emptied since: all of it is new
	}
	if fi.Size() == r.at.Offset {
		return
	}
	// At most what the file may hold: it is read at once.
	buf := make([]byte, min(fi.Size()-r.at.Offset, 2*MaxSize))
	n, _ := f.ReadAt(buf, r.at.Offset)
	buf = buf[:n]
	end := len(buf)
	if !final {
		end = bytes.LastIndexByte(buf, '\n') + 1
	}
	if end == 0 {
		return // no whole line yet
	}
	for l := range bytes.Lines(buf[:end]) {
		if l = bytes.TrimRight(l, "\r\n"); len(l) > 0 {
			line(l)
		}
	}
	r.at = pos{Offset: r.at.Offset + int64(end), Head: head}
	r.save()
}

// firstLine returns the start of f's first line, at most maxHead bytes.
func firstLine(f *os.File) string {
	b, _ := bufio.NewReaderSize(io.NewSectionReader(f, 0, maxHead), maxHead).ReadSlice('\n')
	return string(b)
}

// save notes where r is, for the next server, replacing the note whole.
func (r *reader) save() {
	b, err := json.Marshal(r.at)
	if err != nil {
		return
	}
	tmp := posFile(r.path) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return
	}
	if err := os.Rename(tmp, posFile(r.path)); err != nil {
		_ = os.Remove(tmp)
	}
}
