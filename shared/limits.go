package shared

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
)

// Bounds on what the host takes from a plugin. A plugin runs as its own
// process and may be buggy or hostile: nothing it sends may make the host
// hold more than these, store or print text that is not text, or crash.
const (
	// MaxMessageSize is the largest gRPC message the host accepts from a
	// plugin: an output frame of MaxFrameSize bytes with room for its
	// framing, an exit frame, an Info reply. A larger message fails the
	// call it answers, or the session whose stream it came on, with an
	// error (gRPC's RESOURCE_EXHAUSTED, "received message larger than
	// max"). The list of kept sessions has a bound of its own,
	// MaxSessionsMessageSize.
	MaxMessageSize = MaxFrameSize + 64<<10
	// MaxSessionsMessageSize is the largest Sessions reply (the list of
	// kept sessions) the host accepts, and MaxKeptSessions the most
	// sessions it may list: an entry can take two bytes on the wire and
	// a hundred times that decoded, so the count has a bound of its own,
	// checked before anything is decoded. Each entry's ids and type are
	// at most MaxKeptIDLen bytes. A list of MaxKeptSessions entries with
	// every id, type and exit text at its longest fits in
	// MaxSessionsMessageSize; a reply beyond any of these is refused
	// whole, with an error.
	MaxSessionsMessageSize = 64 << 20
	MaxKeptSessions        = 20_000
	MaxKeptIDLen           = 256
	// MaxReasonLen and MaxSignalLen bound an exit status's Reason and
	// Signal, in bytes, as the host keeps them: longer text is cut.
	MaxReasonLen = 1 << 10
	MaxSignalLen = 32
	// MaxErrorLen bounds the message of an error a plugin returns, in
	// bytes, as the host keeps it; its control characters other than
	// newline and tab become spaces.
	MaxErrorLen = 4 << 10
	// MaxInfoLen bounds Info's name and version (cut beyond), and each of
	// its types and capabilities (an Info with a longer one is refused).
	MaxInfoLen = 128
	// MaxInfoNames bounds the number of types, and of capabilities, an
	// Info may list; an Info with more is refused.
	MaxInfoNames = 256
)

// maxHeaderListSize bounds the headers and trailers of a call from a
// plugin, where an error's message comes (gRPC's own default is 16 MiB).
// It leaves room for an error message well beyond MaxErrorLen, which
// trailers carry twice, escaped.
const maxHeaderListSize = 256 << 10

// recvLimit is the call option of a call to a plugin whose answers may be
// at most n bytes each. Every call of a GRPCClient passes one, so the
// bound holds whatever options the connection was made with.
func recvLimit(n int) grpc.CallOption { return grpc.MaxCallRecvMsgSize(n) }

// ellipsis marks text cleanText cut.
const ellipsis = "…"

// cleanText returns a plugin's free text s as the host keeps it: valid
// UTF-8 (each invalid byte becomes U+FFFD), every control character (NUL,
// escape, newline and the like) a space, and at most limit bytes, cut at a
// character boundary, with an ellipsis at the cut.
func cleanText(s string, limit int) string { return clean(s, limit, false) }

// cleanMessage is cleanText for an error's message, which keeps its
// newlines and tabs (errors.Join joins with newlines).
func cleanMessage(s string, limit int) string { return clean(s, limit, true) }

func clean(s string, limit int, lines bool) string {
	control := unicode.IsControl
	if lines {
		control = func(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }
	}
	if len(s) <= limit && utf8.ValidString(s) && strings.IndexFunc(s, control) < 0 {
		return s
	}
	b := make([]byte, 0, min(len(s), limit)+utf8.UTFMax)
	for _, r := range s { // an invalid byte is utf8.RuneError
		if control(r) {
			r = ' '
		}
		if len(b)+utf8.RuneLen(r) > limit {
			return cutText(b, limit)
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// cutText returns the valid UTF-8 b, of at most limit bytes, cut so that
// it and an ellipsis take at most limit bytes.
func cutText(b []byte, limit int) string {
	mark := ellipsis
	if limit < len(mark) {
		mark = ""
	}
	n := min(len(b), limit-len(mark))
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + mark
}

// cleanExit returns a plugin's exit status as the host keeps it: Reason
// and Signal clean text, within MaxReasonLen and MaxSignalLen.
func cleanExit(st ExitStatus) ExitStatus {
	st.Signal = cleanText(st.Signal, MaxSignalLen)
	st.Reason = cleanText(st.Reason, MaxReasonLen)
	return st
}

// cleanInfo returns a plugin's Info as the host keeps it: its name and
// version clean text within MaxInfoLen. An Info with more than
// MaxInfoNames types or capabilities, or one that is not clean text
// within MaxInfoLen, is an error: they are names the host matches.
func cleanInfo(info Info) (Info, error) {
	info.Name = cleanText(info.Name, MaxInfoLen)
	info.Version = cleanText(info.Version, MaxInfoLen)
	for _, l := range []struct {
		what  string
		names []string
	}{{"environment types", info.Types}, {"capabilities", info.Capabilities}} {
		if len(l.names) > MaxInfoNames {
			return Info{}, fmt.Errorf("%w: plugin info lists %d %s, more than %d", ErrPluginExited, len(l.names), l.what, MaxInfoNames)
		}
		for _, name := range l.names {
			if len(name) > MaxInfoLen || cleanText(name, MaxInfoLen) != name {
				return Info{}, fmt.Errorf("%w: plugin info lists %s %q: not text of at most %d bytes", ErrPluginExited, l.what, cleanText(name, MaxInfoLen), MaxInfoLen)
			}
		}
	}
	return info, nil
}
