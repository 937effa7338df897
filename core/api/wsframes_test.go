package api

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// Every frame the attach endpoint sends is a valid server frame, at each
// length encoding's edges, on the direct path and Next's, with the client
// offering permessage-deflate (not agreed) and flooding pings that the
// server answers between output frames.
func TestRawFramesValid(t *testing.T) {
	api := newAPI(t, Options{PingInterval: 100 * time.Millisecond}, nil)
	_, p := api.create(t, "f")
	c := dialRaw(t, api, "f", "", map[string]string{"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}, 0)
	if ext := c.resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extension agreed: %q", ext)
	}
	if sp := c.resp.Header.Get("Sec-WebSocket-Protocol"); sp != "ptyhost.v1" {
		t.Fatalf("subprotocol %q", sp)
	}
	f, err := c.next(5 * time.Second)
	if err != nil || f.opcode != 1 {
		t.Fatalf("hello: %+v %v", f, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		ping := bytes.Repeat([]byte("p"), 125)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.send(true, 0x9, ping) != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	var want, got []byte
	sizes := []int{1, 2, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 65537, 200000, 1, 3}
	pongs, pings := 0, 0
	for i, n := range sizes {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, chunk...)
		go p.WriteOutput(chunk)
		for len(got) < len(want) {
			f, err := c.next(5 * time.Second)
			if err != nil {
				t.Fatalf("after %d of %d bytes: %v (frame %+v)", len(got), len(want), err, f.opcode)
			}
			switch f.opcode {
			case 0x2:
				if !f.fin {
					t.Fatal("fragmented output")
				}
				got = append(got, f.payload...)
			case 0x1:
				var m map[string]any
				if json.Unmarshal(f.payload, &m) != nil {
					t.Fatalf("text %q", f.payload)
				}
			case 0xa:
				pongs++
			case 0x9:
				pings++
				if err := c.send(true, 0xa, f.payload); err != nil {
					t.Fatal(err)
				}
			case 0x8:
				t.Fatalf("closed: %q", f.payload)
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs (%d bytes, want %d)", len(got), len(want))
	}
	t.Logf("%d pongs, %d pings seen", pongs, pings)
}
