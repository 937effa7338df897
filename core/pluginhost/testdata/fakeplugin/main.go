// Command fakeplugin is an environment plugin for the tests of
// core/pluginhost and cmd/ptyhost. It serves in-memory sessions whose
// command decides what they do:
//
//	env        print the plugin's environment as a JSON array, sorted; exit 0
//	exit N     exit with code N
//	die        end the plugin process in the middle of the Spawn call
//	(other)    print nothing and run until killed
//
// A config {"invalid": "why"} fails ValidateConfig, {"unhealthy": "why"}
// fails Health, and with {"hang": true} Health never answers. Flags:
//
//	-types A,B       the environment types served (default FAKE)
//	-info fail|hang  Info fails, or answers only when its ctx ends
//	-protocols 1,7   serve these protocol versions through go-plugin
//	                 directly instead of shared.Serve
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-plugin"

	"github.com/ptyhost/ptyhost/shared"
)

func main() {
	types := flag.String("types", "FAKE", "environment types served, comma-separated")
	protocols := flag.String("protocols", "", "protocol versions to serve through go-plugin directly, comma-separated")
	info := flag.String("info", "", "fail: Info fails; hang: Info answers only when its ctx ends")
	flag.Parse()
	impl := &fake{types: strings.Split(*types, ","), info: *info}
	if *protocols == "" {
		shared.Serve(impl)
		return
	}
	sets := map[int]plugin.PluginSet{}
	for _, v := range strings.Split(*protocols, ",") {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad -protocols:", err)
			os.Exit(2)
		}
		sets[n] = plugin.PluginSet{shared.PluginName: &shared.EnvironmentPlugin{Impl: impl}}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: sets,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           shared.Logger(),
	})
}

type fake struct {
	types []string
	info  string // the -info flag
}

func (f *fake) Info(ctx context.Context) (shared.Info, error) {
	switch f.info {
	case "fail":
		return shared.Info{}, errors.New("fake: Info fails (-info fail)")
	case "hang":
		<-ctx.Done()
		return shared.Info{}, ctx.Err()
	}
	return shared.Info{
		Name:         "fake",
		Version:      "0.0.1-test",
		Types:        f.types,
		Capabilities: []string{shared.CapValidateConfig, shared.CapHealth},
	}, nil
}

type config struct {
	Invalid   string `json:"invalid"`
	Unhealthy string `json:"unhealthy"`
	Hang      bool   `json:"hang"` // Health answers only when its ctx ends
}

func parse(raw json.RawMessage) (config, error) {
	var c config
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, fmt.Errorf("%w: %v", shared.ErrInvalidConfig, err)
		}
	}
	if c.Invalid != "" {
		return c, fmt.Errorf("%w: fake: %s", shared.ErrInvalidConfig, c.Invalid)
	}
	return c, nil
}

func (f *fake) ValidateConfig(_ context.Context, _ string, raw json.RawMessage) error {
	_, err := parse(raw)
	return err
}

func (f *fake) Health(ctx context.Context, _ string, raw json.RawMessage) error {
	c, err := parse(raw)
	if err != nil {
		return err
	}
	if c.Hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if c.Unhealthy != "" {
		return fmt.Errorf("%w: fake: %s", shared.ErrUnavailable, c.Unhealthy)
	}
	return nil
}

func (f *fake) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if _, err := parse(req.Config); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	p := &session{r: pr, w: pw, done: make(chan struct{})}
	switch cmd := req.Command; {
	case len(cmd) > 0 && cmd[0] == "env":
		env := os.Environ()
		slices.Sort(env)
		b, _ := json.Marshal(env)
		go func() {
			pw.Write(append(b, '\n'))
			p.end(shared.ExitStatus{})
		}()
	case len(cmd) == 1 && cmd[0] == "die":
		os.Exit(3)
	case len(cmd) == 2 && cmd[0] == "exit":
		code, _ := strconv.Atoi(cmd[1])
		go p.end(shared.ExitStatus{Code: code})
	}
	return p, nil
}

// session is an in-memory terminal: output through a pipe.
type session struct {
	r    *io.PipeReader
	w    *io.PipeWriter
	once sync.Once
	done chan struct{}
	st   shared.ExitStatus
}

func (p *session) end(st shared.ExitStatus) {
	p.once.Do(func() {
		p.st = st
		close(p.done)
		p.w.Close()
	})
}

func (p *session) Read(b []byte) (int, error)                { return p.r.Read(b) }
func (p *session) Write(b []byte) (int, error)               { return len(b), nil }
func (p *session) Resize(context.Context, shared.Size) error { return nil }
func (p *session) Kill(context.Context) error {
	p.end(shared.ExitStatus{Code: 137, Signal: "SIGKILL"})
	return nil
}
func (p *session) Close() error { p.end(shared.ExitStatus{Code: 137, Signal: "SIGKILL"}); return nil }
func (p *session) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.done:
		return p.st, nil
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
}
