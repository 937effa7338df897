package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"
)

// The SSH path's own baseline: OpenSSH's client reading the same flood
// from the same sshd, with a terminal (ssh -tt). The SSH target compares
// the SSH path with the HOST path; this says how much of the difference
// is the remote side's (sshd reads its terminal 4 KiB at a time, and
// encrypts and frames every read), which no client can take back.

// opensshFlood runs `gen flood n` through OpenSSH's ssh(1) with the SSH
// environment's host, port, user, key and known_hosts, and times it as
// the bench times a client of ptyhost: from the go byte to the last byte.
func opensshFlood(ctx context.Context, config map[string]any, gen string, n int64) (floodResult, error) {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		return floodResult{}, fmt.Errorf("OpenSSH's client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ssh, opensshArgs(config, gen, "flood", strconv.FormatInt(n, 10))...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return floodResult{}, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return floodResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return floodResult{}, err
	}
	c, readErr := opensshRead(in, out)
	_ = in.Close()
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return floodResult{}, ctx.Err()
	case readErr != nil:
		return floodResult{}, fmt.Errorf("%w (ssh: %s)", readErr, bytes.TrimSpace(stderr.Bytes()))
	case waitErr != nil:
		return floodResult{}, fmt.Errorf("ssh: %w: %s", waitErr, bytes.TrimSpace(stderr.Bytes()))
	}
	want := n - int64(len(ready))
	if c.Bytes != want {
		return floodResult{}, fmt.Errorf("read %d bytes through ssh, want %d", c.Bytes, want)
	}
	return newFloodResult(want, []clientResult{c}), nil
}

// opensshArgs is ssh's command line for running gen with args in the SSH
// environment of config (sshPath's): no escape character, no agent, no
// other keys, the host key checked strictly.
func opensshArgs(config map[string]any, gen string, args ...string) []string {
	a := []string{"-tt", "-o", "LogLevel=ERROR", "-e", "none", "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + fmt.Sprint(config["known_hosts"]),
		"-i", fmt.Sprint(config["identity_file"]), "-p", fmt.Sprint(config["port"]),
		"-l", fmt.Sprint(config["user"]), fmt.Sprint(config["host"]), "--", gen}
	return append(a, args...)
}

// opensshRead waits for the generator's Ready on out, sends the go byte on
// in and counts what follows until the end.
func opensshRead(in io.Writer, out io.Reader) (clientResult, error) {
	buf := make([]byte, readBufSize)
	got := make([]byte, 0, len(ready))
	for len(got) < len(ready) {
		k, err := out.Read(buf[:len(ready)-len(got)])
		got = append(got, buf[:k]...)
		if err != nil {
			return clientResult{}, fmt.Errorf("waiting for the generator: %w (it said %q)", err, got)
		}
	}
	if string(got) != ready {
		return clientResult{}, fmt.Errorf("the generator said %q, want %q", got, ready)
	}
	var c clientResult
	start := time.Now()
	if _, err := in.Write([]byte("g")); err != nil {
		return clientResult{}, fmt.Errorf("sending the go byte: %w", err)
	}
	last := start
	for {
		k, err := out.Read(buf)
		if k > 0 {
			c.Bytes += int64(k)
			c.Reads++
			last = time.Now()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return clientResult{}, err
		}
	}
	c.finish(start, last)
	return c, nil
}
