package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHarnessSeesPageErrors: a tab records a page's console errors,
// uncaught exceptions and failed loads, so that a test that sees none
// means the page had none.
func TestHarnessSeesPageErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>errors</title><script>
console.error("harness-console-error");
fetch("/missing").then(() => { window.fetched = true; });
setTimeout(() => { throw new Error("harness-exception"); }, 0);
</script>`)
	}))
	t.Cleanup(srv.Close)
	p := newTab(t, "harness")
	p.navigate(srv.URL + "/")
	want := []string{"console.error: harness-console-error", "harness-exception", "status of 404"}
	var got []string
	deadline := time.Now().Add(waitTimeout)
	for {
		got = append(got, p.takeProblems()...)
		all := strings.Join(got, "\n")
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(all, w)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tab recorded %q, want each of %q", got, want)
		}
		time.Sleep(pollEvery)
	}
}
