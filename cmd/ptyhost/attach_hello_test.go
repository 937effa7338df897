package main

import "testing"

// What happens before the server's hello is reported like what happens
// after it: a server that does not start with hello is a protocol error, a
// session destroyed as the client attaches says so.
func TestAttachBeforeHello(t *testing.T) {
	tests := []struct {
		id         string
		wantCode   int
		wantStderr string
	}{
		{"nohello1", 1, "ptyhost: protocol error: the server did not start with hello\n"},
		{"early1", 0, "\r\n[session destroyed]\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := newFakeServer(t)
			code, stdout, stderr := runCmd(t, "attach", "--server", f.srv.URL, tt.id)
			if code != tt.wantCode || stderr != tt.wantStderr || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q", code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}
