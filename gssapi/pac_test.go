package gssapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// pacTicket wraps PAC bytes as a ticket's AD-IF-RELEVANT → AD-WIN2K-PAC.
func pacTicket(tb testing.TB, pacBytes []byte) *messages.EncTicketPart {
	tb.Helper()
	ifRelevant, err := asn1.Marshal(types.AuthorizationData{{ADType: 128, ADData: pacBytes}})
	if err != nil {
		tb.Fatal(err)
	}
	return &messages.EncTicketPart{AuthorizationData: types.AuthorizationData{{ADType: 1, ADData: ifRelevant}}}
}

// pacHeader is a PACTYPE header claiming cBuffers buffers, followed by
// rest.
func pacHeader(cBuffers uint32, rest ...byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, cBuffers)
	b = binary.LittleEndian.AppendUint32(b, 0) // Version
	return append(b, rest...)
}

// pacInfoBuffer is one PAC_INFO_BUFFER ([MS-PAC] §2.4).
func pacInfoBuffer(ulType, size uint32, offset uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, ulType)
	b = binary.LittleEndian.AppendUint32(b, size)
	return binary.LittleEndian.AppendUint64(b, offset)
}

// TestDecodePACBoundedAllocation: a PAC whose cBuffers claims more
// PAC_INFO_BUFFERs than its bytes hold is refused before gokrb5 sees it.
// gokrb5 allocates cBuffers × 16 bytes up front: the 15-byte PAC of
// TestDecodeErrorsHideBytes ("2599…" read as a count) cost 15 GiB, which
// the runtime zeroed when the heap had been used before, and under load
// got the test binary OOM-killed or stalled past the 10-minute test
// timeout. Buffers reaching beyond the PAC, also with an offset that
// wraps around when added to the size, are refused too.
func TestDecodePACBoundedAllocation(t *testing.T) {
	key := types.EncryptionKey{KeyType: EnctypeAES256SHA1, KeyValue: make([]byte, 32)}
	for _, tc := range []struct {
		name string
		pac  []byte
	}{
		{"shorter than the header", []byte{1, 0, 0, 0}},
		{"count read from text", []byte("2599PLAINMARKRZ")},
		{"4 Mi buffers claimed", pacHeader(1 << 22)},
		{"all ones", pacHeader(0xffffffff, bytes.Repeat([]byte{0xff}, 64)...)},
		{"two claimed, one present", pacHeader(2, pacInfoBuffer(1, 0, 24)...)},
		{"buffer beyond the PAC", pacHeader(1, pacInfoBuffer(1, 8, 24)...)},
		{"offset wraps around", pacHeader(1, pacInfoBuffer(1, 2, 0xffffffffffffffff)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			info, err := adInfoFromTicket(pacTicket(t, tc.pac), key)
			runtime.ReadMemStats(&after)
			if info != nil || !errors.Is(err, ErrDefectiveToken) {
				t.Fatalf("got %v, %v; want ErrDefectiveToken", info, err)
			}
			checkErrorHygiene(t, err, [][]byte{tc.pac})
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Fatalf("decoding a %d-byte PAC allocated %d bytes", len(tc.pac), n)
			}
		})
	}
	// The bound is not off by one: a PAC with exactly the buffers it
	// claims, none of them logon info (an MIT KDC's PAC), yields no AD
	// information and no error.
	info, err := adInfoFromTicket(pacTicket(t, pacHeader(1, pacInfoBuffer(6, 0, 24)...)), key)
	if info != nil || err != nil {
		t.Fatalf("PAC without logon info: %v, %v", info, err)
	}
}

// FuzzDecodePAC: whatever the PAC bytes of a ticket, adInfoFromTicket
// returns either nothing, AD information, or an error wrapping one
// sentinel that shows none of the bytes; it never panics.
func FuzzDecodePAC(f *testing.F) {
	f.Add([]byte("2599PLAINMARKRZ"))
	f.Add(pacHeader(1, pacInfoBuffer(6, 0, 24)...))
	f.Add(pacHeader(2, append(pacInfoBuffer(1, 8, 40), pacInfoBuffer(6, 8, 48)...)...))
	f.Add(pacHeader(1, pacInfoBuffer(1, 2, 0xffffffffffffffff)...))
	key := types.EncryptionKey{KeyType: EnctypeAES256SHA1, KeyValue: make([]byte, 32)}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := adInfoFromTicket(pacTicket(t, b), key)
		if err != nil {
			if info != nil {
				t.Fatal("AD information with an error")
			}
			var secrets [][]byte
			if len(b) >= 8 {
				secrets = [][]byte{b}
			}
			checkErrorHygiene(t, err, secrets)
		}
	})
}
