package wsproto

import "encoding/json"

// TypeRestarted is the type of the server's "restarted" message: the
// session's process was replaced by a new one (POST
// /api/v1/sessions/{id}/restart).
const TypeRestarted = "restarted"

// Restarted tells a client that the session's process was restarted in
// place: every output byte of the old process came before it, and the new
// process's output follows from Offset, continuing the session's offsets.
// The client stays attached; it may reset its terminal, since the new
// program starts from a fresh one's modes.
type Restarted struct {
	Offset int64
}

// MarshalJSON encodes r as a "restarted" message.
func (r Restarted) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type   string `json:"type"`
		Offset int64  `json:"offset"`
	}{TypeRestarted, r.Offset})
}
