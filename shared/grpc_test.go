package shared

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func spawnReq(id string) SpawnRequest {
	return SpawnRequest{
		SessionID: id, EnvironmentType: "FAKE", Config: json.RawMessage(`{"k":1}`),
		Dir: "/tmp", Command: []string{"sh"}, Env: map[string]string{"A": "B"},
		Size: Size{Cols: 80, Rows: 24},
	}
}

func TestGRPCInfo(t *testing.T) {
	ctx := testContext(t)
	want := Info{Name: "fake", Version: "1.2.3", Types: []string{"A", "B"}, Capabilities: []string{CapResize}}
	c, _ := glue(t, &fakeEnv{info: func(context.Context) (Info, error) { return want, nil }})
	got, err := c.Info(ctx)
	if err != nil || got.Name != want.Name || got.Version != want.Version ||
		len(got.Types) != 2 || got.Types[1] != "B" || len(got.Capabilities) != 1 {
		t.Errorf("Info = %+v, %v; want %+v", got, err, want)
	}
}

func TestGRPCSpawnRequestCrossesIntact(t *testing.T) {
	ctx := testContext(t)
	reqs := make(chan SpawnRequest, 1)
	c, _ := glue(t, &fakeEnv{spawn: func(_ context.Context, req SpawnRequest) (PTY, error) {
		reqs <- req
		return nil, errTest
	}})
	want := spawnReq("s1")
	want.EnvironmentID = "env1"
	want.OutputOffset, want.ScrollbackBytes = 77, 1234
	want.UnsetEnv = []string{"CLAUDECODE", "X"}
	_, _ = c.Spawn(ctx, want)
	got := receive(ctx, t, reqs, "spawn request")
	if got.SessionID != want.SessionID || got.EnvironmentID != "env1" || got.EnvironmentType != "FAKE" ||
		string(got.Config) != `{"k":1}` || got.Dir != "/tmp" || len(got.Command) != 1 || got.Command[0] != "sh" ||
		got.Env["A"] != "B" || got.Size != want.Size || got.OutputOffset != 77 || got.ScrollbackBytes != 1234 ||
		!slices.Equal(got.UnsetEnv, want.UnsetEnv) {
		t.Errorf("plugin got %+v, want %+v", got, want)
	}
}

func TestGRPCSpawnErrorsKeepIdentity(t *testing.T) {
	ctx := testContext(t)
	c, _ := glue(t, &fakeEnv{spawn: func(_ context.Context, req SpawnRequest) (PTY, error) {
		return nil, errors.Join(errors.New("shell: no such file"), ErrInvalidConfig)
	}})
	_, err := c.Spawn(ctx, spawnReq("s1"))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Spawn: %v, want ErrInvalidConfig", err)
	}
	if want := "shell: no such file\ninvalid environment config"; err.Error() != want {
		t.Errorf("Spawn error message %q, want the plugin's %q", err, want)
	}
}

func TestGRPCOutputArrivesWholeAndBeforeExit(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		c = path.of(c)
		p, err := c.Spawn(ctx, spawnReq("s1"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		path.check(t, p)
		fake := receive(ctx, t, ptys, "spawn")

		var sent bytes.Buffer
		for i := range 3000 {
			chunk := bytes.Repeat([]byte{byte(i)}, 1+i%2000)
			sent.Write(chunk)
		}
		go func() {
			data := sent.Bytes()
			for len(data) > 0 {
				n := min(len(data), 1+len(data)%7000)
				if _, err := fake.out.Write(data[:n]); err != nil {
					return
				}
				data = data[n:]
			}
			fake.finish(5)
		}()

		var got bytes.Buffer
		buf := make([]byte, 1<<20)
		for {
			n, err := p.Read(buf)
			if !path.channel && n > MaxFrameSize {
				t.Fatalf("Read returned %d bytes, more than one %d-byte frame", n, MaxFrameSize)
			}
			got.Write(buf[:n])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
		}
		if !bytes.Equal(got.Bytes(), sent.Bytes()) {
			t.Fatalf("received %d bytes, sent %d: not equal", got.Len(), sent.Len())
		}
		st, err := p.Wait(ctx)
		if err != nil || st.Code != 5 {
			t.Errorf("Wait = %+v, %v; want code 5", st, err)
		}
		if n, err := p.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("Read after the end = %d, %v; want io.EOF again", n, err)
		}
	})
}

func TestGRPCSmallReadsKeepTheRestOfAFrame(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		c = path.of(c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		defer p.Close()
		go func() {
			_, _ = fake.out.Write([]byte("🙂 hello, world"))
			fake.finish(0)
		}()
		var got []byte
		buf := make([]byte, 3)
		for {
			n, err := p.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != "🙂 hello, world" {
			t.Errorf("got %q", got)
		}
	})
}

func TestGRPCInputAndResizeInOrder(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		c = path.of(c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		defer p.Close()

		big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
		if n, err := p.Write(big); n != len(big) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if err := p.Resize(ctx, Size{Cols: 132, Rows: 50}); err != nil {
			t.Fatalf("Resize: %v", err)
		}
		var got []byte
		for len(got) < len(big) {
			in := receive(ctx, t, fake.inputs, "input")
			if len(in) > MaxFrameSize {
				t.Errorf("one input write of %d bytes, want at most %d", len(in), MaxFrameSize)
			}
			got = append(got, in...)
		}
		if !bytes.Equal(got, big) {
			t.Error("input arrived changed")
		}
		if size := receive(ctx, t, fake.resizes, "resize"); size != (Size{Cols: 132, Rows: 50}) {
			t.Errorf("resize to %+v, want 132x50", size)
		}
	})
}

func TestGRPCKillAndClose(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		c = path.of(c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))

		if err := p.Kill(ctx); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		waitClosed(ctx, t, fake.killed, "kill")
		if _, err := io.ReadAll(p); err != nil {
			t.Fatalf("Read after Kill: %v", err)
		}
		if st, err := p.Wait(ctx); err != nil || st.Signal != "SIGKILL" {
			t.Errorf("Wait after Kill = %+v, %v", st, err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		waitClosed(ctx, t, fake.closed, "close")
		if err := p.Kill(ctx); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("Kill after Close: %v, want ErrSessionNotFound", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestGRPCDuplicateSessionID(t *testing.T) {
	ctx := testContext(t)
	c, _, _ := spawnFake(t)
	p, err := c.Spawn(ctx, spawnReq("dup"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Spawn(ctx, spawnReq("dup")); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("second Spawn: %v, want ErrAlreadyExists", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := c.Spawn(ctx, spawnReq("dup"))
	if err != nil {
		t.Fatalf("Spawn after Close: %v", err)
	}
	again.Close()
}

func TestGRPCCloseUnblocksRead(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, _ := spawnFake(t)
		c = path.of(c)
		p, err := c.Spawn(ctx, spawnReq("s1"))
		if err != nil {
			t.Fatal(err)
		}
		readErr := make(chan error, 1)
		go func() {
			_, err := p.Read(make([]byte, 10))
			readErr <- err
		}()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := receive(ctx, t, readErr, "Read's return"); err == nil {
			t.Error("Read after Close succeeded")
		}
	})
}

// When the host goes away without closing, the plugin kills and closes.
func TestGRPCHostGoneReleasesSession(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		c = path.of(c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		p.(*grpcPTY).cancel(errors.New("host gone"))
		waitClosed(ctx, t, fake.killed, "kill")
		waitClosed(ctx, t, fake.closed, "close")
	})
}

// A caller that gives up during Spawn leaves nothing behind.
func TestGRPCSpawnCanceled(t *testing.T) {
	ctx := testContext(t)
	spawning := make(chan struct{})
	released := make(chan error, 1)
	c, _ := glue(t, &fakeEnv{spawn: func(ctx context.Context, _ SpawnRequest) (PTY, error) {
		close(spawning)
		<-ctx.Done()
		released <- ctx.Err()
		return nil, ctx.Err()
	}})
	spawnCtx, cancel := context.WithCancel(ctx)
	go func() {
		<-spawning
		cancel()
	}()
	if _, err := c.Spawn(spawnCtx, spawnReq("s1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Spawn: %v, want context.Canceled", err)
	}
	if err := receive(ctx, t, released, "plugin-side cancel"); err == nil {
		t.Error("plugin's Spawn context did not end")
	}
}

func TestGRPCPluginGone(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		env := &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) { return newFakePTY(), nil }}
		c, server, ep := gluePlugin(t, env)
		c = path.of(c)
		p, err := c.Spawn(ctx, spawnReq("s1"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		// The plugin process goes: its server and, with it, its
		// sessions and their byte channels. (A released session does
		// not end with the gRPC server alone: its channel stands for
		// the stream, and the process's end closes it.)
		server.Stop()
		ep.CloseAll(ctx)
		_, err = io.ReadAll(p)
		if !errors.Is(err, ErrPluginExited) {
			t.Errorf("Read after the plugin went away: %v, want ErrPluginExited", err)
		}
		if _, err := p.Wait(ctx); !errors.Is(err, ErrPluginExited) {
			t.Errorf("Wait after the plugin went away: %v, want ErrPluginExited", err)
		}
		// Input fails too, and its error names no socket.
		_, err = p.Write([]byte("x"))
		if err == nil {
			_, err = p.Write([]byte("y"))
		}
		if !errors.Is(err, ErrPluginExited) {
			t.Errorf("Write after the plugin went away: %v, want ErrPluginExited", err)
		}
		if err != nil && (strings.Contains(err.Error(), "unix") || strings.Contains(err.Error(), os.TempDir())) {
			t.Errorf("Write after the plugin went away: %q, names the socket", err)
		}
	})
}

func TestGRPCOptionalInterfaces(t *testing.T) {
	ctx := testContext(t)
	c, _ := glue(t, &fakeEnv{})
	if err := c.ValidateConfig(ctx, "FAKE", nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ValidateConfig without ConfigValidator: %v, want ErrUnsupported", err)
	}
	if err := c.Health(ctx, "FAKE", nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Health without HealthChecker: %v, want ErrUnsupported", err)
	}

	v, _ := glue(t, &validatingEnv{validate: func(_ context.Context, _ string, cfg json.RawMessage) error {
		if string(cfg) != "{}" {
			return errors.Join(errors.New(`unknown field "x"`), ErrInvalidConfig)
		}
		return nil
	}})
	if err := v.ValidateConfig(ctx, "FAKE", json.RawMessage("{}")); err != nil {
		t.Errorf("ValidateConfig(good): %v", err)
	}
	if err := v.ValidateConfig(ctx, "FAKE", json.RawMessage(`{"x":1}`)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ValidateConfig(bad): %v, want ErrInvalidConfig", err)
	}
}
