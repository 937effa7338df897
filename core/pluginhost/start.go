package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/shared"
)

// start starts the plugin's executable, checks it, and asks for its Info,
// within the start timeout, then asks it to hold its sessions (a durable
// one), which the rest of the timeout bounds: a plugin that started is
// not stopped for a hold that did not answer in time. On failure, or when
// ctx ends first, nothing is left running.
func (s *supervised) start(ctx context.Context) (*generation, error) {
	s.mu.Lock()
	path := s.path
	s.mu.Unlock()
	exe, err := openExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("no plugin executable: %w", err)
	}
	defer exe.Close() // after the process has started: dispense waits for that
	if why := exe.looseModes(); why != "" {
		s.log.Warn("someone else could replace this plugin's executable; a pin does not help against that", "path", path, "why", why)
	}
	pin := strings.ToLower(s.conf.SHA256)
	sum, err := s.checksum(exe, pin != "")
	if err != nil {
		return nil, fmt.Errorf("reading the plugin executable: %w", err)
	}
	s.mu.Lock()
	s.sum = sum
	s.mu.Unlock()
	if pin != "" && sum != pin {
		return nil, &refusal{fmt.Sprintf("sha256 mismatch: the configuration pins %s, but %s has %s", pin, path, sum)}
	}
	if afterChecksum != nil {
		afterChecksum(path)
	}

	o := s.p.opts
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	guard := &launchGuard{}
	// Ending ctx (Close, the start timeout) kills a process that has not
	// handshaken: go-plugin's Start does not watch a context.
	stopAbort := context.AfterFunc(ctx, guard.abort)
	defer stopAbort()
	build := func(protocolEnv []string) *exec.Cmd {
		cmd := exe.command(s.conf.Args)
		cmd.Env = append(s.conf.environ(s.builtin, os.Environ()), protocolEnv...)
		return cmd
	}
	pluginLog := newHCLogger(s.log, "")
	// go-plugin fills in cfg.TLSConfig (AutoMTLS): the reattach record
	// keeps it.
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: versionedPlugins(guard.life),
		RunnerFunc:       guard.runnerFunc(build, s.p.sock.path),
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: s.p.sock.path},
		SkipHostEnv:      true, // build's environment is the whole environment
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  shared.GRPCDialOptions(),
		StartTimeout:     o.StartTimeout + time.Second, // ctx's timeout comes first
		Logger:           pluginLog,
	}
	client := plugin.NewClient(cfg)
	rpc, env, info, err := dispense(ctx, client)
	// Started: from here ctx ending bounds the hold below, and no longer
	// kills the process (a Close stops it as it stops any running one).
	if err == nil && (!stopAbort() || ctx.Err() != nil) {
		err = ctx.Err()
	}
	proc := guard.runner()
	if err != nil {
		if proc != nil {
			proc.killGroup()
		}
		client.Kill()
		guard.removeLeftovers(s.p.sock.path)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("did not start: no handshake and Info within the start timeout (%v)", o.StartTimeout)
		}
		return nil, s.startError(err)
	}
	g := &generation{client: client, rpc: rpc, proc: proc, log: pluginLog, env: s.trusted(env), info: info, exited: proc.died, pid: proc.processID(), health: newHealthCache(o)}
	if rc := client.ReattachConfig(); rc != nil {
		g.addr = rc.Addr
	}
	g.wrapped = &pluginEnv{g: g}
	s.makeDurable(ctx, g, func() (*reattachRecord, error) { return launchRecord(s, g, client, cfg, proc.handshake()) })
	if err := parent.Err(); err != nil {
		// Close during the hold: given up on, as before the handshake.
		// (The start timeout, in contrast, only cut the hold short.)
		g.stop(parent, "")
		return nil, err
	}
	return g, nil
}

// versionMismatch matches go-plugin's error for a plugin that speaks a
// protocol version the host does not. go-plugin (v1.8) offers nothing
// typed for it: Client.checkProtoVersion returns a plain fmt.Errorf, and
// Client.NegotiatedVersion is set only when the negotiation succeeded, so
// the plugin's version can be read only from the error's text.
var versionMismatch = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)

// startError explains a failed start.
func (s *supervised) startError(err error) error {
	if m := versionMismatch.FindStringSubmatch(err.Error()); m != nil {
		return &refusal{fmt.Sprintf("plugin %s speaks protocol version %s; this server supports %s", s.name, m[1], supportedVersions())}
	}
	return fmt.Errorf("did not start: %w", err)
}

// supportedVersions lists the plugin protocol versions the host speaks:
// "1", or "1 and 2".
func supportedVersions() string {
	var vs []string
	for _, v := range slices.Sorted(maps.Keys(shared.VersionedPlugins(nil))) {
		vs = append(vs, strconv.Itoa(v))
	}
	if len(vs) > 1 {
		return strings.Join(vs[:len(vs)-1], ", ") + " and " + vs[len(vs)-1]
	}
	return strings.Join(vs, "")
}

// trusted returns env as the plugin's sessions use it: a built-in
// plugin, which ptyhost ships, is trusted with the terminals it hands
// over for input (shared.InputTruster); a third-party one is not, so that
// it cannot hold the whole server through one.
func (s *supervised) trusted(env shared.Environment) shared.Environment {
	if t, ok := env.(shared.InputTruster); ok && s.builtin {
		return t.TrustInput()
	}
	return env
}

// dispense connects to a started plugin (or reattaches to a running one)
// and asks for its Info. It returns go-plugin's connection even when it
// fails after making it.
func dispense(ctx context.Context, client *plugin.Client) (plugin.ClientProtocol, shared.Environment, shared.Info, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, nil, shared.Info{}, err
	}
	raw, err := rpc.Dispense(shared.PluginName)
	if err != nil {
		return rpc, nil, shared.Info{}, err
	}
	env, ok := raw.(shared.Environment)
	if !ok {
		return rpc, nil, shared.Info{}, fmt.Errorf("plugin dispensed %T, not a shared.Environment", raw)
	}
	info, err := env.Info(ctx)
	if err != nil {
		return rpc, nil, shared.Info{}, fmt.Errorf("info: %w", err)
	}
	if len(info.Types) == 0 {
		return rpc, nil, shared.Info{}, errors.New("plugin serves no environment type")
	}
	return rpc, env, info, nil
}

// versionedPlugins is shared.VersionedPlugins for the host, with every
// plugin wrapped so that the dispensed client's context, which go-plugin
// ends only once the plugin's stdout and stderr are closed, ends as soon as
// the process has exited: life returns a context that ends then (nil when
// there is none yet).
func versionedPlugins(life func() context.Context) map[int]plugin.PluginSet {
	sets := shared.VersionedPlugins(nil)
	for _, set := range sets {
		for name, pl := range set {
			if gp, ok := pl.(plugin.GRPCPlugin); ok {
				set[name] = &lifePlugin{grpc: gp, life: life}
			}
		}
	}
	return sets
}

// lifePlugin is a GRPCPlugin whose client lives as long as the process.
type lifePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	grpc plugin.GRPCPlugin
	life func() context.Context
}

func (p *lifePlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.grpc.GRPCServer(b, s)
}

func (p *lifePlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	if life := p.life(); life != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		context.AfterFunc(life, cancel)
	}
	return p.grpc.GRPCClient(ctx, b, c)
}

// afterChecksum, when set (by a test), runs between the check of a
// plugin's checksum and the start of its process.
var afterChecksum func(path string)

// checksum returns the SHA-256 of the open executable, cached while it is
// the same file, unchanged, unless fresh (a pin is checked against a
// fresh checksum at every launch).
func (s *supervised) checksum(exe *exeFile, fresh bool) (string, error) {
	if exe.sameAs(s.sumOf.fi) && !fresh {
		return s.sumOf.sum, nil
	}
	sum, err := exe.sha256()
	if err != nil {
		return "", err
	}
	s.sumOf.fi, s.sumOf.sum = exe.fi, sum
	return sum, nil
}
