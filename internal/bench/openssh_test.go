package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshTestPath is the bench's SSH path against the test sshd
// (scripts/services/sshd.sh), with the generator built where the test
// user can run it. Without the sshd the test is skipped, or fails under
// PTYHOST_INTEGRATION=1.
func sshTestPath(t *testing.T) *remote {
	t.Helper()
	if os.Getenv("PTYHOST_TEST_SSH_HOST") == "" {
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal("PTYHOST_INTEGRATION=1 but PTYHOST_TEST_SSH_* are not set: start the test sshd (scripts/services/sshd.sh start)")
		}
		t.Skip("needs the test sshd: PTYHOST_TEST_SSH_* (scripts/services/sshd.sh start)")
	}
	tmp, err := os.MkdirTemp("/tmp", "ptyhost-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen, err := buildGen(ctx, tmp)
	if err != nil {
		t.Fatal(err)
	}
	r := sshPath(tmp, gen, 1<<20)
	if !r.active() {
		t.Fatalf("SSH path not set up: %s", r.res.Skipped)
	}
	return r
}

func TestOpenSSHFloodCountsEveryByte(t *testing.T) {
	r := sshTestPath(t)
	const n = 4 << 20
	f, err := opensshFlood(context.Background(), r.config, r.at.gen, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(n - len(ready)); f.Want != want || f.Clients[0].Bytes != want {
		t.Fatalf("flood: want %d, read %d", f.Want, f.Clients[0].Bytes)
	}
	if f.MBps <= 0 || f.Clients[0].Reads == 0 {
		t.Fatalf("flood measured nothing: %+v", f)
	}
}

// A host key that does not match is ssh's error, said, not a hang or a
// figure.
func TestOpenSSHFloodWrongHostKey(t *testing.T) {
	r := sshTestPath(t)
	kh := r.config["known_hosts"].(string)
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	// Another ed25519 key: the host's with its key bytes changed.
	f := strings.Fields(string(b))
	key := []byte(f[2])
	key[len(key)-5] ^= 1
	other := filepath.Join(filepath.Dir(kh), "known_hosts_other")
	if err := os.WriteFile(other, []byte(f[0]+" "+f[1]+" "+string(key)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.config["known_hosts"] = other
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = opensshFlood(ctx, r.config, r.at.gen, 1<<20)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("flood against a wrong host key: err %v, context %v", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "Host key verification failed") {
		t.Errorf("error does not give ssh's reason: %v", err)
	}
}

// opensshRead checks what the generator says before it counts.
func TestOpenSSHReadWantsReady(t *testing.T) {
	var in bytes.Buffer
	_, err := opensshRead(&in, strings.NewReader("Permission denied\r\n"+strings.Repeat("x", 64)))
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("err = %v, want the generator's unexpected words", err)
	}
	if in.Len() != 0 {
		t.Errorf("sent %q before the generator was ready", in.String())
	}
	c, err := opensshRead(&in, io.MultiReader(strings.NewReader(ready), strings.NewReader(strings.Repeat("y", 1000))))
	if err != nil || c.Bytes != 1000 || in.String() != "g" {
		t.Fatalf("read %d bytes, sent %q, err %v; want 1000, \"g\", nil", c.Bytes, in.String(), err)
	}
}
