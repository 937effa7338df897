package shared

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// errorCode is one row of the error table.
type errorCode struct {
	err  error
	code codes.Code
	kind proto.ErrorKind
}

// errorCodes is the one table that maps the sentinels of errors.go (and the
// context errors) to gRPC codes, used by the server to build statuses and by
// the client to turn them back into errors. Several sentinels share a code;
// the ErrorDetail kind tells them apart. When a status carries no kind
// (it came from gRPC itself, not from a ptyhost server), the first row with
// its code wins, so ErrInvalidArgument precedes ErrInvalidConfig.
var errorCodes = [...]errorCode{
	{ErrSessionNotFound, codes.NotFound, proto.ErrorKind_ERROR_KIND_SESSION_NOT_FOUND},
	{ErrAlreadyExists, codes.AlreadyExists, proto.ErrorKind_ERROR_KIND_ALREADY_EXISTS},
	{ErrInvalidArgument, codes.InvalidArgument, proto.ErrorKind_ERROR_KIND_INVALID_ARGUMENT},
	{ErrInvalidConfig, codes.InvalidArgument, proto.ErrorKind_ERROR_KIND_INVALID_CONFIG},
	{ErrUnavailable, codes.Unavailable, proto.ErrorKind_ERROR_KIND_UNAVAILABLE},
	{ErrUnsupported, codes.Unimplemented, proto.ErrorKind_ERROR_KIND_UNSUPPORTED},
	{ErrPluginExited, codes.Aborted, proto.ErrorKind_ERROR_KIND_PLUGIN_EXITED},
	{ErrPermissionDenied, codes.PermissionDenied, proto.ErrorKind_ERROR_KIND_PERMISSION_DENIED},
	{context.Canceled, codes.Canceled, proto.ErrorKind_ERROR_KIND_CANCELED},
	{context.DeadlineExceeded, codes.DeadlineExceeded, proto.ErrorKind_ERROR_KIND_DEADLINE_EXCEEDED},
}

// toStatus converts an error returned by an Environment into a gRPC status
// error with the table's code, the error's message, and an ErrorDetail naming
// the sentinel. Errors matching no sentinel become codes.Unknown. A nil error
// stays nil. The message is bounded and made clean (cleanMessage).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		// Already a status, for example from a nested gRPC call: passed on
		// rather than wrapped in a status, with an ErrorDetail of its
		// code's kind unless it has one (a nested ptyhost server's), so
		// that the host takes it for the plugin's answer, not for a
		// failure of its connection to the plugin (fromStatus).
		if _, ours := errorKind(st); ours {
			return err
		}
		kind := proto.ErrorKind_ERROR_KIND_UNSPECIFIED
		for _, row := range errorCodes {
			if row.code == st.Code() {
				kind = row.kind
				break
			}
		}
		if withDetail, derr := st.WithDetails(&proto.ErrorDetail{Kind: kind}); derr == nil {
			return withDetail.Err()
		}
		return err
	}
	code, kind := codes.Unknown, proto.ErrorKind_ERROR_KIND_UNSPECIFIED
	for _, row := range errorCodes {
		if errors.Is(err, row.err) {
			code, kind = row.code, row.kind
			break
		}
	}
	// Within what a host takes (MaxErrorLen; the trailers that carry the
	// message twice are bounded), so that a long error keeps its kind.
	st := status.New(code, cleanMessage(err.Error(), MaxErrorLen))
	if withDetail, derr := st.WithDetails(&proto.ErrorDetail{Kind: kind}); derr == nil {
		st = withDetail
	}
	return st.Err()
}

// fromStatus converts an error returned by a gRPC call back into an error
// that errors.Is matches against the sentinel it stood for, and whose message
// is the plugin's message without gRPC decoration.
//
// A status without an ErrorDetail did not come from a ptyhost server: with
// codes.Unavailable it means the connection failed, which for a local plugin
// means the plugin process is gone (ErrPluginExited), and its message says
// so in words of its own (errConnectionLost): gRPC's names the connection's
// socket ("dial unix /tmp/plugin…", "read unix @->…"), which a session's
// status_reason would then show. Other codes map through the table. Errors
// that are not statuses are returned unchanged. The message, the plugin's
// text, is bounded and made clean (cleanMessage, within MaxErrorLen): the
// host returns and logs it.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := cleanMessage(st.Message(), MaxErrorLen)
	kind, fromServer := errorKind(st)
	if !fromServer && st.Code() == codes.Unavailable {
		return &remoteError{msg: fmt.Sprintf("%v: %s", ErrPluginExited, errConnectionLost), sentinel: ErrPluginExited}
	}
	for _, row := range errorCodes {
		if fromServer && row.kind == kind || !fromServer && row.code == st.Code() {
			return &remoteError{msg: msg, sentinel: row.err}
		}
	}
	// ErrPluginProtocol has no kind of its own (a new one would be a
	// change of the protocol that plugins built before it do not send):
	// the SDK's server sends it as an error without a kind whose message
	// starts with the sentinel's (its Spawn returning no PTY and no
	// error, grpc_server_spawn.go), which the host turns back into it.
	if fromServer && kind == proto.ErrorKind_ERROR_KIND_UNSPECIFIED && strings.HasPrefix(msg, ErrPluginProtocol.Error()+":") {
		return &remoteError{msg: msg, sentinel: ErrPluginProtocol}
	}
	return &remoteError{msg: msg}
}

// errConnectionLost and errConnectionClosed say, after ErrPluginExited's
// message, why a call failed on the transport to the plugin, in place of
// gRPC's messages, which name its sockets and internals.
const (
	errConnectionLost   = "the connection to the plugin was lost (its process died or stopped answering)"
	errConnectionClosed = "the connection to the plugin was closed (the plugin is stopping or restarting)"
)

// errorKind returns the ErrorDetail kind a ptyhost server attached to st, and
// whether there was one.
func errorKind(st *status.Status) (proto.ErrorKind, bool) {
	for _, d := range st.Details() {
		if detail, ok := d.(*proto.ErrorDetail); ok {
			return detail.GetKind(), true
		}
	}
	return proto.ErrorKind_ERROR_KIND_UNSPECIFIED, false
}

// remoteError is an error that crossed the plugin boundary: the plugin's
// message, and the sentinel it wrapped (nil if none).
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Unwrap() error { return e.sentinel }
