package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// Version is the plugin's version, reported by Info.
	Version = "0.1.0"
	// EnvironmentType is the environment type the plugin serves.
	EnvironmentType = "SSH"

	defaultCols = 80
	defaultRows = 24
)

// SSH is the SSH environment. It is safe for concurrent use. It holds the
// connection pool; each session is an *sshPTY on a pooled connection.
type SSH struct {
	logger hclog.Logger
	dialer *dialer
	pool   *pool

	wg sync.WaitGroup // clean-ups of Spawns that timed out
}

var (
	_ shared.Environment     = (*SSH)(nil)
	_ shared.ConfigValidator = (*SSH)(nil)
	_ shared.HealthChecker   = (*SSH)(nil)
)

// New returns the SSH environment. A nil logger discards logs. Close
// releases its connections.
func New(logger hclog.Logger) *SSH {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	d := &dialer{logger: logger, hostKeys: newHostKeys(logger), getenv: os.Getenv}
	return &SSH{logger: logger, dialer: d, pool: newPool(logger, d)}
}

// Close closes every connection, which ends the sessions still on them,
// and waits for the plugin's goroutines. Spawn fails afterwards.
func (s *SSH) Close() {
	s.pool.close()
	s.wg.Wait()
}

// Info implements shared.Environment.
func (s *SSH) Info(context.Context) (shared.Info, error) {
	return shared.Info{
		Name:         "ssh",
		Version:      Version,
		Types:        []string{EnvironmentType},
		Capabilities: []string{shared.CapResize, shared.CapValidateConfig, shared.CapHealth},
	}, nil
}

// ValidateConfig implements shared.ConfigValidator: the config's fields,
// and what the plugin's machine must provide for it — a readable identity
// file (decrypted with its passphrase), the named variables, the agent
// socket, parseable known_hosts files (the global ones too: a missing one
// is fine, and so is one the plugin may not read under strict, which only
// accept-new refuses). It does not connect; Health does.
func (s *SSH) ValidateConfig(_ context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	for _, ep := range cfg.endpoints() {
		if _, err := loadCredentials(ep.ep, s.dialer.getenv); err != nil {
			return prefixErr(ep.what, err)
		}
		if ep.ep.HostKeyCheck != checkOff {
			if _, err := s.dialer.hostKeys.load(ep.ep); err != nil {
				return fmt.Errorf("%w: %s%w", shared.ErrInvalidConfig, ep.what, err)
			}
		}
	}
	return nil
}

// namedEndpoint is an endpoint with the prefix of its messages.
type namedEndpoint struct {
	ep   *endpoint
	what string // "" or "jump host "
}

// endpoints lists the config's endpoints: the host, then the jump host.
func (c *config) endpoints() []namedEndpoint {
	eps := []namedEndpoint{{&c.Target, ""}}
	if c.Jump != nil {
		eps = append(eps, namedEndpoint{c.Jump, "jump host "})
	}
	return eps
}

// Health implements shared.HealthChecker: it connects and logs in (through
// the jump host, if any), then disconnects. An unreachable host wraps
// shared.ErrUnavailable; a host key or authentication failure says so.
func (s *SSH) Health(ctx context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	l, err := s.dialer.dial(ctx, cfg)
	if err != nil {
		return err
	}
	l.close()
	return nil
}

// Spawn implements shared.Environment: it takes a pooled connection of
// the environment with room (dialling one if needed) and starts the
// session on it as a channel; when the server refuses the session because
// the connection is full, it goes on to another (see capacity.go).
// All within the config's connect_timeout.
func (s *SSH) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if err := checkType(req.EnvironmentType); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if err := checkDir(req.Dir); err != nil {
		return nil, err
	}
	if err := checkArgv(req.Command); err != nil {
		return nil, err
	}
	if err := shared.CheckPortableEnv(req.Env); err != nil {
		return nil, fmt.Errorf("%w: session env: %w", shared.ErrInvalidArgument, err)
	}
	if req.Size.Cols == 0 || req.Size.Rows == 0 {
		req.Size = shared.Size{Cols: defaultCols, Rows: defaultRows}
	}
	log := s.logger.With("session_id", req.SessionID, "environment_id", req.EnvironmentID)

	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	type result struct {
		p   *sshPTY
		err error
	}
	res := make(chan result, 1)
	go func() {
		p, err := s.start(ctx, req, cfg, log)
		res <- result{p, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, spawnTimeout(ctx, r.err, cfg)
		}
		log.Debug("session started", "dir", req.Dir, "host", cfg.Target.String())
		return r.p, nil
	case <-ctx.Done():
		// The server has not answered a request; x/crypto's calls take no
		// context. Clean up whenever it does (or the connection dies).
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if r := <-res; r.p != nil {
				r.p.Close()
			}
		}()
		return nil, spawnTimeout(ctx, ctx.Err(), cfg)
	}
}

// start acquires a connection and starts the session on it, moving on to
// another connection each time the server refuses the session on a full
// one, or the connection is found stuck before the exec request was
// accepted. On failure it has released every connection it took.
func (s *SSH) start(ctx context.Context, req shared.SpawnRequest, cfg *config, log hclog.Logger) (*sshPTY, error) {
	// Each refusal marks a connection full; a connection of the group has
	// room again only when one of its sessions ends. The bound stops a
	// Spawn that keeps losing the race for freed room.
	attempts := 2*cfg.MaxConnections + 2
	for attempt := 1; ; attempt++ {
		c, err := s.pool.acquire(ctx, req.EnvironmentID, cfg)
		if err != nil {
			return nil, err
		}
		p, ran, err := c.startSession(ctx, req, cfg, log)
		if err == nil {
			return p, nil
		}
		s.pool.release(c)
		if !ran && s.pool.isStuck(c) && ctx.Err() == nil && attempt < attempts {
			// Closed under this start because an earlier one stalled on
			// it. Not once the server accepted the exec request: the
			// command may have run, and must not run twice.
			log.Debug("connection stuck; trying another", "reason", err)
			continue
		}
		if !errors.Is(err, errConnFull) {
			return nil, err
		}
		if attempt >= attempts {
			return nil, fmt.Errorf("%w: ssh: no connection to %s had room after %d attempts: %w", shared.ErrUnavailable, cfg.Target.addr(), attempt, err)
		}
		log.Debug("connection full; trying another", "reason", err)
	}
}

// spawnTimeout turns a Spawn that ran out of connect_timeout into an
// unavailable error; other errors pass.
func spawnTimeout(ctx context.Context, err error, cfg *config) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: ssh: %s did not start the session within %v (connect_timeout)", shared.ErrUnavailable, cfg.Target.addr(), cfg.ConnectTimeout)
	}
	return err
}

// checkType rejects environment types other than SSH. Empty is SSH.
func checkType(envType string) error {
	if envType != "" && envType != EnvironmentType {
		return fmt.Errorf("%w: environment type %q is not %s", shared.ErrInvalidArgument, envType, EnvironmentType)
	}
	return nil
}
