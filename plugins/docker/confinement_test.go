package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

// execConfinement inspects the running container name and checks it as an
// exec-mode target under roots.
func execConfinement(t *testing.T, cli *client.Client, name string, roots []string) error {
	t.Helper()
	res, err := cli.ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return checkExecConfinement(t.Context(), &daemon{api: cli}, res.Container, roots)
}

// An exec target made with --security-opt systempaths=unconfined (the
// API's empty MaskedPaths and ReadonlyPaths), whose root can write
// /proc/sys, is refused under roots, though nothing in its SecurityOpt
// says so; a default one is not.
func TestExecTargetWithUnmaskedProc(t *testing.T) {
	cli := dockerClient(t)
	roots := []string{t.TempDir()}
	unmasked := startTargetWith(t, cli, "-unmasked", nil, &container.HostConfig{MaskedPaths: []string{}, ReadonlyPaths: []string{}})
	if err := execConfinement(t, cli, unmasked, roots); !errors.Is(err, shared.ErrPermissionDenied) || !strings.Contains(err.Error(), "/proc/sys writable") {
		t.Errorf("a target with /proc/sys writable: %v, want refused", err)
	}
	if err := execConfinement(t, cli, startTargetWith(t, cli, "-default", nil, &container.HostConfig{}), roots); err != nil {
		t.Errorf("a default target: %v", err)
	}
}

// A bind mount made through a link in a root, which pointed outside the
// roots when the target started and points inside now, is refused: what
// was mounted cannot be told from where the link points now. A link in the
// root's own path is followed.
func TestExecTargetBindThroughALink(t *testing.T) {
	cli := dockerClient(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	inside := filepath.Join(root, "in")
	outside := filepath.Join(base, "outside")
	for _, dir := range []string{inside, outside} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	name := startTargetWith(t, cli, "-link", nil, &container.HostConfig{Binds: []string{link + ":/data:ro"}})
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(inside, link); err != nil {
		t.Fatal(err)
	}
	if err := execConfinement(t, cli, name, []string{root}); !errors.Is(err, shared.ErrPermissionDenied) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a bind mount through a link in the root: %v, want refused", err)
	}

	rootLink := filepath.Join(base, "root-link") // the operator names the root through a link
	if err := os.Symlink(root, rootLink); err != nil {
		t.Fatal(err)
	}
	direct := startTargetWith(t, cli, "-direct", nil, &container.HostConfig{Binds: []string{filepath.Join(rootLink, "in") + ":/data:ro"}})
	if err := execConfinement(t, cli, direct, []string{rootLink}); err != nil {
		t.Errorf("a bind mount under a root named through a link: %v", err)
	}
}

// Under roots, only the log drivers that keep the output on the daemon's
// disk are allowed: the others send it to an address (syslog-address and
// the like), which the daemon reaches from the host's network namespace
// even for a container without a network.
func TestLogDriverUnderRoots(t *testing.T) {
	for _, d := range []string{"", "none", "json-file", "local"} {
		if err := checkLogDriver(d); err != nil {
			t.Errorf("log driver %q: %v", d, err)
		}
	}
	for _, d := range []string{"syslog", "fluentd", "gelf", "journald", "splunk", "awslogs", "vendor/driver:1"} {
		if err := checkLogDriver(d); !errors.Is(err, shared.ErrPermissionDenied) {
			t.Errorf("log driver %q: %v, want refused", d, err)
		}
	}
}
