// Package api is ptyhost's HTTP API (docs/protocol.md): the REST endpoints
// under /api/v1, the WebSocket attach endpoint, /healthz, and the request
// checks every one passes (Guard, RequireToken). It is built only on the
// exported methods of core.Manager and core.Attachment; the wire format of
// the attach endpoint is package wsproto's.
//
// NewHandler's handler is safe for concurrent use. Each attached WebSocket
// runs two goroutines, a reader (client input and resizes) and a writer
// (the session's output and control messages), which end together when
// the connection or the attachment ends; the request returns after both.
package api
