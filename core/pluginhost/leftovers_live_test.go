package pluginhost

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// A failed start's leftovers are removed on the plugin's word (its
// handshake names its socket), so only a socket nothing listens on goes:
// a plugin whose start fails (its Info, say) and whose handshake names
// another, live plugin's socket in the socket directory must not have the
// host remove that one, through which the next server would reattach.
func TestRemoveLeftoversSparesALiveSocket(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "lo")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	live := filepath.Join(sockDir, "plugin123456")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	pr, pw := io.Pipe()
	r := &procRunner{stdout: newDrainedPipe(pr, true)}
	go func() { _, _ = pw.Write([]byte("1|1|unix|" + live + "|grpc|\n")); pw.Close() }()
	_, _ = io.ReadAll(r.stdout)
	l := &launchGuard{r: r}
	l.removeLeftovers(sockDir)
	if _, err := os.Lstat(live); err != nil {
		t.Fatalf("a listening socket (another plugin's) was removed on a failed start's word: %v", err)
	}
}
