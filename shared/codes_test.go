package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorCodesRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{"session not found", ErrSessionNotFound, codes.NotFound},
		{"already exists", ErrAlreadyExists, codes.AlreadyExists},
		{"invalid config", ErrInvalidConfig, codes.InvalidArgument},
		{"invalid argument", ErrInvalidArgument, codes.InvalidArgument},
		{"unavailable", ErrUnavailable, codes.Unavailable},
		{"unsupported", ErrUnsupported, codes.Unimplemented},
		{"plugin exited", ErrPluginExited, codes.Aborted},
		{"permission denied", ErrPermissionDenied, codes.PermissionDenied},
		{"canceled", context.Canceled, codes.Canceled},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{tt.err, fmt.Errorf("doing it: %w", tt.err)} {
				st := toStatus(err)
				if got := status.Code(st); got != tt.wantCode {
					t.Errorf("toStatus(%q) code = %v, want %v", err, got, tt.wantCode)
				}
				back := fromStatus(st)
				if !errors.Is(back, tt.err) {
					t.Errorf("fromStatus(toStatus(%q)) = %q, does not match the sentinel", err, back)
				}
				if back.Error() != err.Error() {
					t.Errorf("fromStatus(toStatus(%q)) message = %q, want the original", err, back.Error())
				}
				// Sentinels sharing a code stay apart.
				for _, other := range tests {
					if other.err != tt.err && errors.Is(back, other.err) {
						t.Errorf("fromStatus(toStatus(%q)) also matches %q", err, other.err)
					}
				}
			}
		})
	}
}

func TestToStatus(t *testing.T) {
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
	st := toStatus(errors.New("disk on fire"))
	if status.Code(st) != codes.Unknown {
		t.Errorf("unknown error code = %v, want Unknown", status.Code(st))
	}
	back := fromStatus(st)
	if back.Error() != "disk on fire" || errors.Unwrap(back) != nil {
		t.Errorf("fromStatus(unknown) = %q wrapping %v, want the plain message", back, errors.Unwrap(back))
	}
	// A status passes through with its code and message.
	nested := status.Error(codes.ResourceExhausted, "too much")
	if got := toStatus(nested); status.Code(got) != codes.ResourceExhausted {
		t.Errorf("toStatus(status) code = %v, want ResourceExhausted", status.Code(got))
	}
	// A plugin's own call's Unavailable (a containerd client's, say)
	// reaches the host as the plugin's answer, with its reason: not as a
	// lost connection to the plugin. (Found by a review: it read "plugin
	// exited: the connection to the plugin was lost".)
	own := status.Error(codes.Unavailable, "connection error: dial unix /run/containerd/containerd.sock: no such file")
	back = fromStatus(toStatus(own))
	if !errors.Is(back, ErrUnavailable) || errors.Is(back, ErrPluginExited) || !strings.Contains(back.Error(), "containerd.sock") {
		t.Errorf("a plugin's own Unavailable status at the host: %q (ErrUnavailable %v, ErrPluginExited %v); want ErrUnavailable with its reason",
			back, errors.Is(back, ErrUnavailable), errors.Is(back, ErrPluginExited))
	}
	// One that a nested ptyhost server sent keeps its kind.
	inner := toStatus(fmt.Errorf("gone: %w", ErrSessionNotFound))
	if back := fromStatus(toStatus(inner)); !errors.Is(back, ErrSessionNotFound) {
		t.Errorf("a nested ptyhost status at the host: %q, want ErrSessionNotFound", back)
	}
}

// Statuses without ptyhost's ErrorDetail come from gRPC itself (transport
// failures, a plugin too old for an RPC) and map by code alone.
func TestFromStatusForeign(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"transport unavailable", status.Error(codes.Unavailable, "connection error: desc = \"transport is closing\""), ErrPluginExited},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown method Health"), ErrUnsupported},
		{"not found", status.Error(codes.NotFound, "gone"), ErrSessionNotFound},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad"), ErrInvalidArgument},
		{"canceled", status.Error(codes.Canceled, "context canceled"), context.Canceled},
		{"internal", status.Error(codes.Internal, "grpc: error while marshaling"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromStatus(tt.err)
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("fromStatus(%v) = %q, want it to match %q", tt.err, got, tt.want)
			}
			if tt.want == nil && errors.Unwrap(got) != nil {
				t.Errorf("fromStatus(%v) wraps %v, want nothing", tt.err, errors.Unwrap(got))
			}
			if msg := status.Convert(tt.err).Message(); tt.want != ErrPluginExited && got.Error() != msg {
				t.Errorf("fromStatus message = %q, want %q", got.Error(), msg)
			}
		})
	}
	// A transport failure says the connection to the plugin was lost, in
	// words of its own: gRPC's name the socket, which a session's
	// status_reason would show.
	for _, msg := range []string{
		`connection error: desc = "transport: Error while dialing: dial unix /tmp/plugin12345: connect: connection refused"`,
		`connection error: desc = "transport: authentication handshake failed: read unix @->/tmp/ptyhost-plugins-1/plugin2: read: connection reset by peer"`,
		`error reading from server: EOF`,
	} {
		got := fromStatus(status.Error(codes.Unavailable, msg))
		if !errors.Is(got, ErrPluginExited) || got.Error() != "plugin exited: "+errConnectionLost {
			t.Errorf("fromStatus(Unavailable %q) = %q, want ErrPluginExited saying the connection was lost", msg, got)
		}
		for _, internal := range []string{"/tmp/plugin", "dial unix", "unix", "desc =", "transport"} {
			if strings.Contains(got.Error(), internal) {
				t.Errorf("fromStatus(Unavailable %q) = %q, shows %q", msg, got, internal)
			}
		}
	}
	if fromStatus(nil) != nil {
		t.Error("fromStatus(nil) != nil")
	}
	if got := fromStatus(io.EOF); got != io.EOF {
		t.Errorf("fromStatus(io.EOF) = %v, want it unchanged", got)
	}
}

// ErrPluginProtocol, which has no row of its own, crosses the wire from a
// ptyhost server by its message; a foreign status saying the same does not
// carry it, nor does a message that only mentions it.
func TestPluginProtocolRoundTrip(t *testing.T) {
	back := fromStatus(toStatus(fmt.Errorf("%w: Spawn returned no PTY and no error", ErrPluginProtocol)))
	if !errors.Is(back, ErrPluginProtocol) || back.Error() != "the plugin broke the protocol: Spawn returned no PTY and no error" {
		t.Errorf("round trip: %q, Is ErrPluginProtocol %v", back, errors.Is(back, ErrPluginProtocol))
	}
	if back := fromStatus(toStatus(errors.New("x: the plugin broke the protocol: y"))); errors.Is(back, ErrPluginProtocol) {
		t.Errorf("%q matches ErrPluginProtocol", back)
	}
	if back := fromStatus(status.Error(codes.Unknown, "the plugin broke the protocol: y")); errors.Is(back, ErrPluginProtocol) {
		t.Errorf("foreign %q matches ErrPluginProtocol", back)
	}
}
