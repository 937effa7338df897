// Package wsproto is ptyhost's WebSocket attach protocol
// (docs/protocol.md): the subprotocol name, the JSON control messages, the
// close codes and reasons, and a small client (Dial) that attaches to a
// session, reads its output and control messages, and sends input and
// resizes.
//
// The server (core/api), the ptyhost CLI, the benchmark and the end-to-end
// tests all use it; third parties may import it too. It imports nothing
// else of ptyhost's, so it changes only when the protocol does.
//
// A Conn is read from one goroutine (Next); Input, Resize, SendText and the
// close methods may be called from any goroutine, concurrently with Next.
package wsproto
