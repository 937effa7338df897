package gormstore

import (
	"encoding/json"
	"strings"
	"testing"
)

// An event too long for a notification has its error and exit reason cut
// to fit, each keeping a fair share, escaped text (six bytes of JSON a
// byte) included; one that fits is not cut.
func TestPayloadCuts(t *testing.T) {
	for _, tc := range []struct {
		name           string
		err, reason    string
		minErr, minRsn int // JSON bytes each keeps at least
	}{
		{"both long", strings.Repeat("é", 6000), strings.Repeat("é", 6000), 3000, 3000},
		{"escaped error, long reason", strings.Repeat("\x01", 3000), strings.Repeat("‹", 7000), 3000, 3000},
		{"error only", strings.Repeat("x", 20000), "", 7000, 0},
		{"reason only, all escaped", "", strings.Repeat(`"`, 9000), 0, 7000},
		{"fits", "short", "reason", 5, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := notification{Type: "session_exited", SessionID: "s", Error: tc.err, ExitReason: tc.reason}.payload()
			if err != nil {
				t.Fatal(err)
			}
			if len(p) > maxPayload {
				t.Fatalf("payload of %d bytes, over %d", len(p), maxPayload)
			}
			var back notification
			if err := json.Unmarshal([]byte(p), &back); err != nil {
				t.Fatal(err)
			}
			if e, r := jsonLen(back.Error), jsonLen(back.ExitReason); e < tc.minErr || r < tc.minRsn {
				t.Errorf("kept %d and %d JSON bytes of the error and the reason, want at least %d and %d", e, r, tc.minErr, tc.minRsn)
			}
		})
	}
}
