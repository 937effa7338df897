package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/shared"
)

// Cluster mode: several servers share one PostgreSQL database as the
// nodes of a cluster (docs/design.md, "Nodes"). Any of --node-name,
// --advertise-url and --cluster-secret (or their variables, or the
// configuration file's keys) makes this server a node, and then all three
// are needed. A node registers in the database with a lease
// (core/gormstore's RegisterNode) instead of claiming the whole database,
// and runs only the sessions recorded with its name.

// minClusterSecret is the least length of the cluster secret, in bytes.
const minClusterSecret = 16

// minNodeLease bounds --node-lease from below: a lease renewed more often
// than every 200 ms is load on the database for nothing.
const minNodeLease = time.Second

// nodeNamePattern is what a node name may be: a DNS label's characters,
// lower case, so that it can name hosts and environments (host-NAME).
var nodeNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// clusterConfig is the server's cluster settings. The zero value is a
// single server.
type clusterConfig struct {
	nodeName     string
	advertiseURL string
	// secret authenticates the nodes to each other. It is never logged,
	// never echoed in an error, and never reaches a plugin (the plugins
	// get no PTYHOST_* variable but PTYHOST_PLUGIN_LOG_LEVEL); compare it with
	// crypto/subtle.ConstantTimeCompare.
	secret string
	// lease is how long the node's lease holds without renewal; it is
	// renewed every fifth of it.
	lease time.Duration
}

// register adds the cluster flags to fs, writing into c. The secret's
// flag takes any string, so that no parse error can echo it; check
// judges it.
func (c *clusterConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.nodeName, "node-name", "", "run as node `NAME` of a cluster of servers sharing one PostgreSQL database (letters a-z, digits and -, at most 63); needs --advertise-url and --cluster-secret [PTYHOST_NODE_NAME]")
	fs.StringVar(&c.advertiseURL, "advertise-url", "", "the `URL` (http:// or https://) at which the cluster's other nodes and clients reach this node [PTYHOST_ADVERTISE_URL]")
	fs.StringVar(&c.secret, "cluster-secret", "", "the `SECRET` (16 bytes or more) the nodes of the cluster share to authenticate to each other; prefer the variable or the configuration file, as a flag shows in the process list [PTYHOST_CLUSTER_SECRET]")
	c.lease = gormstore.DefaultNodeLeaseTTL
	durationFlag(fs, &c.lease, "node-lease", gormstore.DefaultNodeLeaseTTL, "how long (`DURATION`) a node counts as running after its last renewal, at least 1s; it renews every fifth of it [PTYHOST_NODE_LEASE]")
}

// enabled reports whether any cluster setting is given: the server is a
// node of a cluster.
func (c clusterConfig) enabled() bool {
	return c.nodeName != "" || c.advertiseURL != "" || c.secret != ""
}

// check validates the cluster settings for a server on the database db.
// Errors name the setting, never the secret's value.
func (c *clusterConfig) check(db string) error {
	if c.lease < minNodeLease {
		return fmt.Errorf("--node-lease %v: want at least %v", c.lease, minNodeLease)
	}
	if !c.enabled() {
		return nil
	}
	if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		return errors.New("several servers (--node-name, --advertise-url, --cluster-secret) need a PostgreSQL database: " +
			"set --db postgres://…; SQLite serves a single server")
	}
	for _, s := range []struct{ name, value string }{
		{"--node-name (PTYHOST_NODE_NAME)", c.nodeName},
		{"--advertise-url (PTYHOST_ADVERTISE_URL)", c.advertiseURL},
		{"--cluster-secret (PTYHOST_CLUSTER_SECRET)", c.secret},
	} {
		if s.value == "" {
			return fmt.Errorf("a node of a cluster needs --node-name, --advertise-url and --cluster-secret: %s is missing", s.name)
		}
	}
	if !nodeNamePattern.MatchString(c.nodeName) {
		return fmt.Errorf("--node-name %q: want 1 to 63 of a-z, 0-9 and -", c.nodeName)
	}
	u, err := url.Parse(c.advertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--advertise-url %q: want an absolute http:// or https:// URL, such as http://10.0.0.1:7420, without user, query or fragment", redactURL(c.advertiseURL))
	}
	c.advertiseURL = strings.TrimSuffix(c.advertiseURL, "/")
	if len(c.secret) < minClusterSecret {
		return fmt.Errorf("--cluster-secret (PTYHOST_CLUSTER_SECRET) is %d bytes long: want at least %d, such as the output of 'openssl rand -hex 16'",
			len(c.secret), minClusterSecret)
	}
	if err := tokenChars(c.secret); err != nil {
		return fmt.Errorf("--cluster-secret (PTYHOST_CLUSTER_SECRET): %w", err)
	}
	return nil
}

// registerNode registers this server as a node in db, with a lease renewed
// until the returned release is called (with a context bounding it). A
// node already running under the name refuses the start.
func (c clusterConfig) registerNode(ctx context.Context, db *gormstore.DB, log *slog.Logger) (*gormstore.NodeLease, error) {
	lease, err := db.RegisterNode(ctx, gormstore.NodeOptions{
		Name:     c.nodeName,
		URL:      c.advertiseURL,
		Version:  shared.Version(),
		LeaseTTL: c.lease,
		Renewal:  c.lease / 5,
		// The registry records a fingerprint of it, never the secret, so
		// that the nodes see one started with another secret.
		ClusterSecret: c.secret,
	})
	if err != nil {
		if errors.Is(err, gormstore.ErrNodeRunning) || errors.Is(err, gormstore.ErrOwned) {
			return nil, err
		}
		return nil, fmt.Errorf("registering node %s: %w", c.nodeName, err)
	}
	log.Info("registered as a node of the cluster", "node", c.nodeName, "advertise_url", c.advertiseURL, "lease", c.lease)
	return lease, nil
}

// own makes the database this server's to take sessions up from: a single
// server claims it whole (a second one is refused), a node registers its
// name (a second process of the name is refused). lost is closed when a
// single server's claim is taken over, or when a node's lease is lost
// (taken over, or expired unrenewed, when the other nodes may record its
// sessions as node_lost): the server must stop, leaving its sessions to
// the plugins for its next start (docs/design.md, "Nodes"). release gives
// the claim or the lease up, within its context.
func (c serveConfig) own(ctx context.Context, db *gormstore.DB, log *slog.Logger) (ownership, error) {
	if c.cluster.enabled() {
		lease, err := c.cluster.registerNode(ctx, db, log)
		if err != nil {
			return ownership{}, err
		}
		return ownership{
			node: true,
			lost: lease.Lost(),
			ready: func(ctx context.Context) {
				if err := lease.Ready(ctx); err != nil {
					log.Warn("marking the node ready; its next renewal will", "err", err)
				}
			},
			release: func(ctx context.Context) {
				if err := lease.Release(ctx); err != nil {
					log.Warn("expiring the node's lease", "err", err)
				}
			},
		}, nil
	}
	claim, err := db.Claim(ctx, gormstore.Owner{DataDir: c.dataDir})
	if err != nil {
		if errors.Is(err, gormstore.ErrOwned) {
			return ownership{}, err
		}
		return ownership{}, fmt.Errorf("claiming the database: %w", err)
	}
	return ownership{
		lost:  claim.Lost(),
		ready: func(context.Context) {},
		release: func(ctx context.Context) {
			if err := claim.Release(ctx); err != nil {
				log.Warn("releasing the database", "err", err)
			}
		},
	}, nil
}

// ownership is what own returns: lost is closed when the server no
// longer owns what it claimed; ready says that the server has taken up
// the sessions it had kept (a node lists as unhealthy until then);
// release gives the claim up.
type ownership struct {
	// node: a node's lease, not a single server's claim (onLost).
	node    bool
	lost    <-chan struct{}
	ready   func(context.Context)
	release func(context.Context)
}

// nodeLister is core.Options.Nodes: the database's registry for a node of
// a cluster, nil (the server lists itself) for a single server.
func (c serveConfig) nodeLister(db *gormstore.DB) core.NodeLister {
	if !c.cluster.enabled() {
		return nil
	}
	return db
}
