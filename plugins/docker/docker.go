package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/hashicorp/go-hclog"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// Version is the plugin's version, reported by Info.
	Version = "0.1.0"
	// EnvironmentType is the environment type the plugin serves.
	EnvironmentType = "DOCKER"

	defaultCols = 80
	defaultRows = 24
)

// Docker is the DOCKER environment. It is safe for concurrent use; its only
// state is the daemon clients, one per configured host, and the machine
// and owner id that label its containers. Each session is a *session.
type Docker struct {
	logger hclog.Logger
	// machine is this machine, owner this process (reap.go): they label
	// its containers and tell whose others are.
	machine machine
	owner   string
	daemons daemons

	// ctx ends when Close is called; watchers are the goroutines watching
	// the owners of containers left at a sweep (reap.go).
	ctx      context.Context
	cancel   context.CancelFunc
	watchers sync.WaitGroup

	reapMu sync.Mutex
	// reapMu protects the following.
	reaped map[string]bool // hosts whose orphans were cleaned up

	// initBinary returns the binary a direct terminal's container runs
	// (direct.go): this one, if it can run there. runDir holds the
	// handoff sockets. Tests set both.
	initBinary func() (string, error)
	runDir     string
	// handoffName begins the names of this process's handoff
	// directories (handoffName).
	handoffName string
	sweepMu     sync.Mutex
	sweptAt     time.Time // protected by sweepMu: runDir's last sweep

	// directTries counts the direct terminals tried (tests read it).
	directTries atomic.Int64
}

var (
	_ shared.Environment     = (*Docker)(nil)
	_ shared.ConfigValidator = (*Docker)(nil)
	_ shared.HealthChecker   = (*Docker)(nil)
)

// New returns the DOCKER environment. A nil logger discards logs.
func New(logger hclog.Logger) *Docker {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := thisMachine()
	owner := m.ownerID(os.Getpid())
	return &Docker{
		logger: logger, machine: m, owner: owner, reaped: map[string]bool{}, ctx: ctx, cancel: cancel,
		initBinary: staticSelfOnce, runDir: os.TempDir(), handoffName: handoffName(owner),
	}
}

// Close stops watching other plugin processes and closes the daemon
// clients. Sessions are not affected.
func (e *Docker) Close() {
	e.cancel()
	e.watchers.Wait()
	e.daemons.close()
}

// Info implements shared.Environment.
func (e *Docker) Info(context.Context) (shared.Info, error) {
	return shared.Info{
		Name:         "docker",
		Version:      Version,
		Types:        []string{EnvironmentType},
		Capabilities: []string{shared.CapResize, shared.CapValidateConfig, shared.CapHealth},
	}, nil
}

// ValidateConfig implements shared.ConfigValidator. It checks the config
// alone: the daemon may be down when an environment is created.
func (e *Docker) ValidateConfig(_ context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	_, err := parseConfig(raw)
	return err
}

// Health implements shared.HealthChecker: the daemon must answer, and in
// exec mode the container must run. Failures wrap shared.ErrUnavailable
// (or shared.ErrInvalidConfig for a bad config).
func (e *Docker) Health(ctx context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	d, err := e.daemon(ctx, cfg.Host)
	if err != nil {
		return err
	}
	if cfg.execMode() {
		_, err := d.execTarget(ctx, cfg.Container)
		return err
	}
	return nil
}

// daemon returns the daemon for host after a ping (which negotiates the
// API version), cleaning up its orphans on first contact.
func (e *Docker) daemon(ctx context.Context, host string) (*daemon, error) {
	d, err := e.daemons.get(host)
	if err != nil {
		return nil, err
	}
	if err := d.ping(ctx); err != nil {
		return nil, err
	}
	e.reapMu.Lock()
	done := e.reaped[host]
	e.reapMu.Unlock()
	if !done {
		e.ReapOrphans(ctx, host)
	}
	return d, nil
}

// Spawn implements shared.Environment.
//
// Image mode: the image must be present or pullable per the pull policy.
// When it must be pulled, Spawn returns at once and the session's output
// starts with the pull's progress; a failed pull ends the session with the
// reason. Otherwise the container is created, attached and started before
// Spawn returns, and a failure leaves nothing behind.
//
// Exec mode: the container must run; the session is a new process in it.
func (e *Docker) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if err := checkType(req.EnvironmentType); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if req.Dir != "" && !path.IsAbs(req.Dir) {
		return nil, fmt.Errorf("%w: working directory %q is not an absolute path", shared.ErrInvalidArgument, req.Dir)
	}
	if err := shared.CheckEnv(req.Env); err != nil {
		return nil, fmt.Errorf("%w: session env: %w", shared.ErrInvalidArgument, err)
	}
	if req.Size.Cols == 0 || req.Size.Rows == 0 {
		req.Size = shared.Size{Cols: defaultCols, Rows: defaultRows}
	}
	d, err := e.daemon(ctx, cfg.Host)
	if err != nil {
		return nil, err
	}
	if err := checkRoots(d, &cfg, &req); err != nil {
		return nil, err
	}
	log := e.logger.With("session_id", req.SessionID)
	if cfg.execMode() {
		s := newSession(d, cfg, req, log)
		if err := s.startExec(ctx); err != nil {
			s.abandon()
			return nil, err
		}
		s.finishStart(nil)
		return s, nil
	}

	img, present, err := imageInfo(ctx, d, cfg.Image)
	if err != nil {
		return nil, err
	}
	pull := cfg.Pull == PullAlways || !present
	if pull && cfg.Pull == PullNever {
		return nil, fmt.Errorf("%w: image %s not present and pull is never", shared.ErrInvalidConfig, cfg.Image)
	}
	s := newSession(d, cfg, req, log)
	if !pull {
		if err := s.startContainer(ctx, e, img); err != nil {
			s.abandon()
			return nil, err
		}
		s.finishStart(nil)
		return s, nil
	}
	s.startAfterPull(e)
	return s, nil
}

// imageInfo inspects the image; present is false if the daemon has none by
// that name.
func imageInfo(ctx context.Context, d *daemon, image string) (img client.ImageInspectResult, present bool, err error) {
	img, err = d.api.ImageInspect(ctx, image)
	switch {
	case err == nil:
		return img, true, nil
	case cerrdefs.IsNotFound(err):
		return img, false, nil
	}
	return img, false, d.classify("inspect image "+image, err)
}

// execTarget inspects the running container named in exec mode. A
// missing container is a config error; a stopped one is unavailable.
func (d *daemon) execTarget(ctx context.Context, name string) (container.InspectResponse, error) {
	res, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return container.InspectResponse{}, fmt.Errorf("%w: container %s not found", shared.ErrInvalidConfig, name)
	case err != nil:
		return container.InspectResponse{}, d.classify("inspect container "+name, err)
	case res.Container.State == nil || !res.Container.State.Running:
		return container.InspectResponse{}, fmt.Errorf("%w: container %s is not running", shared.ErrUnavailable, name)
	}
	return res.Container, nil
}

// inheritedEnv is the environment a container's execs inherit: its
// config's, the image's ENV included.
func inheritedEnv(c container.InspectResponse) []string {
	if c.Config == nil {
		return nil
	}
	return c.Config.Env
}

// checkType rejects environment types other than DOCKER. Empty is DOCKER.
func checkType(envType string) error {
	if envType != "" && envType != EnvironmentType {
		return fmt.Errorf("%w: environment type %q is not %s", shared.ErrInvalidArgument, envType, EnvironmentType)
	}
	return nil
}
