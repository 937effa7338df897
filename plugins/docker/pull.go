package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// pullImage pulls image, writing the daemon's progress to w as lines a
// terminal shows as they come.
func pullImage(ctx context.Context, d *daemon, image string, w io.Writer) error {
	p := &progress{w: w, image: image, layers: map[string]layerState{}}
	p.line("Pulling %s", image)
	resp, err := d.api.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return d.classify("", err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		p.message(msg)
	}
	return nil
}

// progress renders the daemon's pull messages as terminal lines
// (CR LF-terminated, as nothing translates them on the way):
//
//	Pulling busybox:latest: 3f2a1b2c3d4e Downloading 45% (1.2 MB/2.7 MB)
//
// Per layer, a line is written when its status changes, and while bytes
// move at every tenth of the way, so a slow pull shows steady progress
// without flooding the terminal.
type progress struct {
	w      io.Writer
	image  string
	layers map[string]layerState
}

// layerState is what progress last wrote for a layer.
type layerState struct {
	status string
	tenth  int64 // -1 before any percentage
}

func (p *progress) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\r\n", args...)
}

func (p *progress) message(m jsonstream.Message) {
	status := strings.TrimSpace(m.Status)
	if status == "" {
		return
	}
	if m.ID == "" || strings.HasPrefix(status, "Pulling from ") {
		// Whole-image news: "Digest: …", "Status: Downloaded newer image…",
		// "Pulling from library/busybox" (whose id is the tag).
		p.line("Pulling %s: %s", p.image, status)
		return
	}
	id := shortID(m.ID)
	last, seen := p.layers[m.ID]
	if !seen {
		last.tenth = -1
	}
	pr := m.Progress
	if pr == nil || pr.Total <= 0 {
		if last.status != status {
			p.layers[m.ID] = layerState{status: status, tenth: -1}
			p.line("Pulling %s: %s %s", p.image, id, status)
		}
		return
	}
	current := min(max(pr.Current, 0), pr.Total)
	tenth := current * 10 / pr.Total
	if last.status == status && last.tenth == tenth {
		return
	}
	p.layers[m.ID] = layerState{status: status, tenth: tenth}
	p.line("Pulling %s: %s %s %d%% (%s/%s)", p.image, id, status, current*100/pr.Total, humanBytes(current), humanBytes(pr.Total))
}

// humanBytes formats a byte count as Docker's progress does (decimal
// units).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, " kMGT"[i])
}
