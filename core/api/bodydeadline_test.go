package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// shortenBodyTimeouts sets bodyReadTimeout and drainTimeout for the test.
func shortenBodyTimeouts(t *testing.T, read, drain time.Duration) {
	t.Helper()
	oldRead, oldDrain := bodyReadTimeout, drainTimeout
	bodyReadTimeout, drainTimeout = read, drain
	t.Cleanup(func() { bodyReadTimeout, drainTimeout = oldRead, oldDrain })
}

// sendSlowBody sends a request over a connection of its own to srvURL
// that declares a body of 1000 bytes and sends one, and returns the status
// line of the answer once the server has closed the connection. It fails
// t if the server holds the connection open for wait.
func sendSlowBody(t *testing.T, srvURL, method, path string, header map[string]string, wait time.Duration) string {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	req.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Length: 1000\r\n")
	for k, v := range header {
		req.WriteString(k + ": " + v + "\r\n")
	}
	req.WriteString("\r\n{")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s %s: the connection is still open after %v (answer so far: %q)", method, path, wait, answer)
	}
	status, _, _ := strings.Cut(string(answer), "\r\n")
	return status
}

// TestSlowBodyClosesConnection: a request whose body stops after one of
// the bytes it declared holds its connection no longer than the body's
// deadline, whether the handler reads the body or refuses the request
// without reading it (and net/http then drains it).
func TestSlowBodyClosesConnection(t *testing.T) {
	const long, short = time.Hour, 100 * time.Millisecond
	api := newAPI(t, Options{Token: "tok", Cluster: ClusterOptions{NodeName: "a", Secret: "cluster-secret"}}, nil)
	tests := []struct {
		name        string
		read, drain time.Duration
		method      string
		path        string
		header      map[string]string
		want        string
	}{
		{"read by the handler", short, long, "POST", "/api/v1/sessions",
			map[string]string{"Authorization": "Bearer tok", "Content-Type": "application/json"}, "408"},
		{"refused for the token", long, short, "POST", "/api/v1/sessions",
			map[string]string{"Content-Type": "application/json"}, "401"},
		{"refused by Guard", long, short, "POST", "/api/v1/sessions",
			map[string]string{"Authorization": "Bearer tok"}, "415"},
		{"refused for the cluster secret", long, short, "POST", "/api/v1/sessions",
			map[string]string{HeaderClusterSecret: "wrong", "Content-Type": "application/json"}, "401"},
		{"a body on a GET", long, short, "GET", "/api/v1/sessions",
			map[string]string{"Authorization": "Bearer tok"}, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shortenBodyTimeouts(t, tt.read, tt.drain)
			status := sendSlowBody(t, api.srv.URL, tt.method, tt.path, tt.header, 5*time.Second)
			if !strings.HasPrefix(status, "HTTP/1.1 "+tt.want+" ") {
				t.Errorf("answer %q, want %s", status, tt.want)
			}
		})
	}
}

// TestBodyDeadlineLifted: once the body has been read, or when there is
// none, the deadline no longer counts: a handler that works on past it
// keeps its request's context, and the connection serves the next
// request.
func TestBodyDeadlineLifted(t *testing.T) {
	shortenBodyTimeouts(t, 50*time.Millisecond, 50*time.Millisecond)
	srv := httptest.NewServer(bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "the request's context ended", http.StatusInternalServerError)
		case <-time.After(10 * bodyReadTimeout):
			io.WriteString(w, "ok")
		}
	})))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, tt := range []struct {
		name, method, body string
	}{
		{"body", "POST", "{}"},
		{"again on the same connection", "POST", "{}"},
		{"no body", "GET", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Errorf("status %d %q, want 200", resp.StatusCode, b)
			}
		})
	}
}

// TestBodyDeadlineWithoutConnection: a ResponseWriter that cannot set a
// read deadline (a recorder, a proxy's) serves the request as it is.
func TestBodyDeadlineWithoutConnection(t *testing.T) {
	h := bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader("{}")))
	if w.Code != 200 || w.Body.String() != "{}" {
		t.Errorf("answer %d %q, want 200 {}", w.Code, w.Body)
	}
}
