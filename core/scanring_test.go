package core

// scannedRing is a ring fed as a session's pump feeds it: each write is
// scanned for safe points, then committed.
type scannedRing struct {
	*ring
	scanner scanner
}

func newScannedRing(capacity int) *scannedRing {
	return &scannedRing{ring: newRing(capacity), scanner: newScanner(capacity)}
}

// write scans p and commits it, as session.output does.
func (r *scannedRing) write(p []byte) {
	points, modes := r.scanner.scan(p)
	r.commit(p, points, modes)
}
