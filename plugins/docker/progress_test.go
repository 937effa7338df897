package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
)

// A pull as Docker 20.10 reports it, rendered as terminal lines.
func TestProgress(t *testing.T) {
	const stream = `
{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","id":"3f2a1b2c3d4e5f"}
{"status":"Waiting","id":"3f2a1b2c3d4e5f"}
{"status":"Downloading","progressDetail":{"current":1000,"total":10000},"progress":"[=>  ]","id":"3f2a1b2c3d4e5f"}
{"status":"Downloading","progressDetail":{"current":1500,"total":10000},"id":"3f2a1b2c3d4e5f"}
{"status":"Downloading","progressDetail":{"current":4500,"total":10000},"id":"3f2a1b2c3d4e5f"}
{"status":"Downloading","progressDetail":{"current":4600,"total":10000},"id":"3f2a1b2c3d4e5f"}
{"status":"Downloading","progressDetail":{"current":2700000,"total":2700000},"id":"3f2a1b2c3d4e5f"}
{"status":"Verifying Checksum","progressDetail":{},"id":"3f2a1b2c3d4e5f"}
{"status":"Download complete","progressDetail":{},"id":"3f2a1b2c3d4e5f"}
{"status":"Extracting","progressDetail":{"current":32768,"total":2700000},"id":"3f2a1b2c3d4e5f"}
{"status":"Pull complete","progressDetail":{},"id":"3f2a1b2c3d4e5f"}
{"status":"Pull complete","progressDetail":{},"id":"3f2a1b2c3d4e5f"}
{"status":"Digest: sha256:abc"}
{"status":"Status: Downloaded newer image for busybox:latest"}
`
	var out bytes.Buffer
	p := &progress{w: &out, image: "busybox:latest", layers: map[string]layerState{}}
	dec := json.NewDecoder(strings.NewReader(stream))
	for dec.More() {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		p.message(m)
	}
	want := strings.Join([]string{
		"Pulling busybox:latest: Pulling from library/busybox",
		"Pulling busybox:latest: 3f2a1b2c3d4e Pulling fs layer",
		"Pulling busybox:latest: 3f2a1b2c3d4e Waiting",
		"Pulling busybox:latest: 3f2a1b2c3d4e Downloading 10% (1.0 kB/10.0 kB)",
		"Pulling busybox:latest: 3f2a1b2c3d4e Downloading 45% (4.5 kB/10.0 kB)",
		"Pulling busybox:latest: 3f2a1b2c3d4e Downloading 100% (2.7 MB/2.7 MB)",
		"Pulling busybox:latest: 3f2a1b2c3d4e Verifying Checksum",
		"Pulling busybox:latest: 3f2a1b2c3d4e Download complete",
		"Pulling busybox:latest: 3f2a1b2c3d4e Extracting 1% (32.8 kB/2.7 MB)",
		"Pulling busybox:latest: 3f2a1b2c3d4e Pull complete",
		"Pulling busybox:latest: Digest: sha256:abc",
		"Pulling busybox:latest: Status: Downloaded newer image for busybox:latest",
		"",
	}, "\r\n")
	if got := out.String(); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1_500_000: "1.5 MB", 3_200_000_000: "3.2 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
