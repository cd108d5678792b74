package audit

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewSessionID returns a session id unique across restarts and nodes: 12
// hex digits of the Unix time in milliseconds (so ids sort by start time)
// and 16 of randomness, 28 characters in all, e.g.
// "019ad4c3e2f1a3b4c5d6e7f80912".
func NewSessionID(now time.Time) string {
	var b [14]byte
	ms := uint64(now.UnixMilli())
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], ms)
	copy(b[:6], t[2:])
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
