package sharedtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fakeRequest(id, config string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID:       id,
		EnvironmentType: "FAKE",
		Config:          json.RawMessage(config),
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

// checkThroughGlue checks what only the glue between host and plugin makes
// true of env, a fakeEnv as the host sees it.
func checkThroughGlue(t *testing.T, env shared.Environment) {
	t.Run("info", func(t *testing.T) {
		info, err := env.Info(testContext(t))
		if err != nil || info.Name != "fake" || info.Version != "1.0.0" || len(info.Types) != 1 || info.Types[0] != "FAKE" {
			t.Errorf("Info = %+v, %v", info, err)
		}
	})
	t.Run("session", func(t *testing.T) {
		ctx := testContext(t)
		p, err := env.Spawn(ctx, fakeRequest("s1", `{"code": 3}`))
		if err != nil {
			t.Fatal(err)
		}
		term := sharedtest.NewTerm(t, p)
		term.Expect(ctx, "hello s1")
		term.Write("bye\r")
		term.Expect(ctx, "bye")
		if st := term.Wait(ctx); st.Code != 3 {
			t.Errorf("exit status %+v, want code 3", st)
		}
	})
	t.Run("errors keep their identity", func(t *testing.T) {
		ctx := testContext(t)
		_, err := env.Spawn(ctx, fakeRequest("s2", `{"cod": 3}`))
		if !errors.Is(err, shared.ErrInvalidConfig) {
			t.Errorf("Spawn with a bad config: %v, want ErrInvalidConfig", err)
		}
		v, ok := env.(shared.ConfigValidator)
		if !ok {
			t.Fatalf("%T does not implement shared.ConfigValidator", env)
		}
		if err := v.ValidateConfig(ctx, "FAKE", json.RawMessage(`{"cod": 3}`)); !errors.Is(err, shared.ErrInvalidConfig) {
			t.Errorf("ValidateConfig: %v, want ErrInvalidConfig", err)
		}
		if err := v.ValidateConfig(ctx, "FAKE", json.RawMessage(`{"code": 3}`)); err != nil {
			t.Errorf("ValidateConfig of a good config: %v", err)
		}
	})
	t.Run("duplicate id", func(t *testing.T) {
		ctx := testContext(t)
		p, err := env.Spawn(ctx, fakeRequest("dup", ``))
		if err != nil {
			t.Fatal(err)
		}
		sharedtest.NewTerm(t, p).Expect(ctx, "hello dup")
		// The fake does not track ids; the glue's server does.
		q, err := env.Spawn(ctx, fakeRequest("dup", ``))
		if err == nil {
			q.Close()
		}
		if !errors.Is(err, shared.ErrAlreadyExists) {
			t.Errorf("second Spawn of one id: %v, want ErrAlreadyExists", err)
		}
	})
}

func TestServe(t *testing.T) {
	fake := newFakeEnv()
	checkThroughGlue(t, sharedtest.Serve(t, fake))
}

// The test's cleanup closes what the test left open, in the plugin too.
func TestServeClosesSessionsAtCleanup(t *testing.T) {
	fake := newFakeEnv()
	t.Run("leave open", func(t *testing.T) {
		ctx := testContext(t)
		env := sharedtest.Serve(t, fake)
		p, err := env.Spawn(ctx, fakeRequest("left-open", ``))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if _, err := p.Read(buf); err != nil {
			t.Fatal(err)
		}
		// p is neither read to the end nor closed.
	})
	select {
	case id := <-fake.closed:
		if id != "left-open" {
			t.Errorf("closed session %q, want left-open", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the session left open was not closed after the test")
	}
}

func TestLaunch(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakePluginEnv, "1")
	checkThroughGlue(t, sharedtest.Launch(t, exe))
}

// The full harness through Launch, against the HOST plugin's binary.
func TestLaunchHostPlugin(t *testing.T) {
	env := sharedtest.Launch(t, testbin.Path(t, "plugins/host", "plugins/ptyhost-plugin-host"))
	sharedtest.Run(t, env, sharedtest.Config{
		Type:      "HOST",
		Config:    json.RawMessage(`{"shell": "/bin/sh"}`),
		BadConfig: json.RawMessage(`{"shel": "/bin/sh"}`),
		Dir:       t.TempDir(),
	})
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as a test's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Launch fails the test on a PTYHOST_PLUGIN_LOG_LEVEL that names no
// level, as the server refuses to start on one; it fell back to warn
// without a word.
func TestLaunchRefusesABadLogLevel(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakePluginEnv, "1")
	t.Setenv(shared.LogLevelEnv, "bogus")
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sharedtest.Launch(r, exe)
	}()
	<-done
	if !strings.Contains(r.msg, "bogus") || !strings.Contains(r.msg, shared.LogLevelEnv) {
		t.Errorf("Launch with a bad log level: failed with %q, want the variable and its value named", r.msg)
	}
}
