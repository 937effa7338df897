// Package leakcheck fails a test binary that leaves goroutines running: use
// it from TestMain.
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// After the tests pass, it waits a little for goroutines to wind down, then
// reports every goroutine still running code of this module (other than the
// test framework's own) and exits non-zero.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// Main runs the tests, removes the binaries testbin built for them, then
// checks for leaked goroutines.
func Main(m *testing.M) {
	code := m.Run()
	testbin.Cleanup() // the binaries the tests built, if any
	if code == 0 {
		if leaks := Wait(5 * time.Second); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) leaked:\n\n%s\n", len(leaks), strings.Join(leaks, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// Wait polls until no leaked goroutine is left or the timeout passes, and
// returns the stacks of those left.
func Wait(timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		leaks := Leaked()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Leaked returns the stacks of goroutines running this module's code,
// except the caller's own and the test framework's.
func Leaked() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaks []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // this goroutine
			continue
		}
		if !strings.Contains(g, "github.com/ptyhost/ptyhost/") {
			continue
		}
		if strings.Contains(g, "testing.(*M).") || strings.Contains(g, "testing.tRunner") ||
			strings.Contains(g, "leakcheck.") {
			continue
		}
		leaks = append(leaks, g)
	}
	return leaks
}
