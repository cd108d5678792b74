package gssapi

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
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

// logonInfo is the NDR of a KERB_VALIDATION_INFO ([MS-PAC] §2.5) for user
// RID 1104 named name in domain S-1-5-21-11-22-33 (named domain), member
// of groups, whose GroupIDs array claims wireCount elements.
func logonInfo(name, domain string, groups []uint32, wireCount uint32) []byte {
	le := binary.LittleEndian
	u32 := func(b []byte, v uint32) []byte { return le.AppendUint32(b, v) }
	pad := func(b []byte, n int) []byte {
		for len(b)%n != 0 {
			b = append(b, 0)
		}
		return b
	}
	utf16 := func(b []byte, s string) []byte {
		b = u32(u32(u32(b, uint32(len(s))), 0), uint32(len(s)))
		for _, r := range s {
			b = le.AppendUint16(b, uint16(r))
		}
		return pad(b, 4)
	}
	unicodeString := func(b []byte, s string, ref uint32) []byte {
		b = le.AppendUint16(b, uint16(2*len(s)))
		b = le.AppendUint16(b, uint16(2*len(s)))
		return u32(b, ref)
	}
	b := []byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc, 0, 0, 0, 0, 0, 0, 0, 0}
	b = u32(b, 0x20000)                                    // top-level referent
	b = append(b, make([]byte, 6*8)...)                    // FILETIMEs
	b = unicodeString(b, name, 0x20004)                    // EffectiveName
	b = append(b, make([]byte, 5*8)...)                    // FullName … HomeDirectoryDrive
	b = u32(u32(u32(b, 0), 1104), 513)                     // LogonCount, BadPasswordCount; UserId; PrimaryGroupId
	b = u32(u32(b, uint32(len(groups))), 0x20008)          // GroupCount, GroupIds
	b = u32(b, 0)                                          // UserFlags
	b = append(b, make([]byte, 16+8)...)                   // UserSessionKey, LogonServer
	b = unicodeString(b, domain, 0x2000c)                  // LogonDomainName
	b = u32(b, 0x20010)                                    // LogonDomainId
	b = append(b, make([]byte, 8+4+4+16+4+4+4+4+4+4+4)...) // Reserved1 … ResourceGroupIds
	b = utf16(b, name)
	b = u32(b, wireCount)
	for _, rid := range groups {
		b = u32(u32(b, rid), 7)
	}
	b = utf16(b, domain)
	b = u32(b, 4)
	b = append(b, 1, 4, 0, 0, 0, 0, 0, 5)
	for _, sub := range []uint32{21, 11, 22, 33} {
		b = u32(b, sub)
	}
	b = pad(b, 8)
	le.PutUint32(b[8:], uint32(len(b)-16))
	return b
}

// signedPAC is a PAC of the logon info buffer and server and KDC
// signatures (checksum type cksumType, [MS-PAC] §2.8), the server
// signature made with key over the PAC with both signatures zeroed.
func signedPAC(t *testing.T, logon []byte, cksumType int32, key types.EncryptionKey) []byte {
	t.Helper()
	et, err := crypto.GetChksumEtype(cksumType)
	if err != nil {
		t.Fatal(err)
	}
	sigLen := et.GetHMACBitLength() / 8
	sigBuf := binary.LittleEndian.AppendUint32(nil, uint32(cksumType))
	sigBuf = append(sigBuf, make([]byte, sigLen)...)
	var body []byte
	buffers := []struct {
		ulType uint32
		data   []byte
	}{{1, logon}, {6, sigBuf}, {7, sigBuf}}
	offsets := make([]uint64, len(buffers))
	start := 8 + 16*len(buffers)
	for i, buf := range buffers {
		offsets[i] = uint64(start + len(body))
		body = append(body, buf.data...)
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
	}
	var infos []byte
	for i, buf := range buffers {
		infos = append(infos, pacInfoBuffer(buf.ulType, uint32(len(buf.data)), offsets[i])...)
	}
	p := append(pacHeader(uint32(len(buffers)), infos...), body...)
	sum, err := et.GetChecksumHash(key.KeyValue, p, keyusage.KERB_NON_KERB_CKSUM_SALT)
	if err != nil {
		t.Fatal(err)
	}
	copy(p[offsets[1]+4:], sum)
	copy(p[offsets[2]+4:], bytes.Repeat([]byte{0x5a}, sigLen)) // the KDC's, not ours to check
	return p
}

func aesKey(t *testing.T) types.EncryptionKey {
	t.Helper()
	k := types.EncryptionKey{KeyType: EnctypeAES256SHA1, KeyValue: make([]byte, 32)}
	if _, err := rand.Read(k.KeyValue); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDecodePACSigned: a PAC whose server signature verifies with the
// service key yields the logon info; one signed with another key, of
// another enctype's checksum, altered after signing, without signatures
// or with two logon info buffers is refused before its logon info is
// decoded.
func TestDecodePACSigned(t *testing.T) {
	key := aesKey(t)
	logon := logonInfo("alice", "EXAMPLE", []uint32{513, 1105}, 2)
	good := signedPAC(t, logon, chksumtype.HMAC_SHA1_96_AES256, key)
	info, err := adInfoFromTicket(pacTicket(t, good), key)
	if err != nil {
		t.Fatal(err)
	}
	want := ADInfo{UserSID: "S-1-5-21-11-22-33-1104", LogonName: "alice", Domain: "EXAMPLE",
		GroupSIDs: []string{"S-1-5-21-11-22-33-513", "S-1-5-21-11-22-33-1105"}}
	if info.UserSID != want.UserSID || info.LogonName != want.LogonName || info.Domain != want.Domain ||
		strings.Join(info.GroupSIDs, ",") != strings.Join(want.GroupSIDs, ",") {
		t.Fatalf("got %+v, want %+v", *info, want)
	}

	altered := bytes.Clone(good)
	altered[bytes.Index(altered, logon)+len(logon)-8] ^= 1 // a sub-authority of the domain SID
	rc4 := types.EncryptionKey{KeyType: EnctypeRC4HMAC, KeyValue: key.KeyValue[:16]}
	for _, tc := range []struct {
		name string
		pac  []byte
		key  types.EncryptionKey
		want error
	}{
		{"another key", good, aesKey(t), ErrBadIntegrity},
		{"altered", altered, key, ErrBadIntegrity},
		{"checksum of another enctype", signedPAC(t, logon, chksumtype.KERB_CHECKSUM_HMAC_MD5, rc4), key, ErrBadIntegrity},
		{"no signatures", pacHeader(1, append(pacInfoBuffer(1, uint32(len(logon)), 24), logon...)...), key, ErrBadIntegrity},
		{"two logon infos", pacHeader(2, append(append(pacInfoBuffer(1, uint32(len(logon)), 40), pacInfoBuffer(1, uint32(len(logon)), 40)...), logon...)...), key, ErrDefectiveToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := adInfoFromTicket(pacTicket(t, tc.pac), tc.key)
			if info != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", info, err, tc.want)
			}
			checkErrorHygiene(t, err, [][]byte{tc.pac, tc.key.KeyValue})
		})
	}
	// The RC4 PAC itself is fine with the RC4 key.
	if _, err := adInfoFromTicket(pacTicket(t, signedPAC(t, logon, chksumtype.KERB_CHECKSUM_HMAC_MD5, rc4)), rc4); err != nil {
		t.Fatalf("RC4 PAC: %v", err)
	}
}

// TestDecodePACBoundedLogonInfo: logon info whose NDR counts claim more
// elements than its bytes hold (gokrb5 would allocate them all before
// reading one) is refused within 1 MiB of allocation, whether the PAC's
// server signature fails (anyone's PAC) or verifies (logon info that a
// trusted realm wrote, re-signed by our KDC).
func TestDecodePACBoundedLogonInfo(t *testing.T) {
	key := aesKey(t)
	huge := logonInfo("alice", "EXAMPLE", []uint32{513}, 0x0fffffff)
	for _, tc := range []struct {
		name string
		pac  []byte
		want error
	}{
		{"unsigned", signedPAC(t, huge, chksumtype.HMAC_SHA1_96_AES256, aesKey(t)), ErrBadIntegrity},
		{"signed", signedPAC(t, huge, chksumtype.HMAC_SHA1_96_AES256, key), ErrDefectiveToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			info, err := adInfoFromTicket(pacTicket(t, tc.pac), key)
			runtime.ReadMemStats(&after)
			if info != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", info, err, tc.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Fatalf("decoding a %d-byte PAC allocated %d bytes", len(tc.pac), n)
			}
		})
	}
	// Every count of the walk, one at a time, claiming 2²⁸ elements.
	good := logonInfo("alice", "EXAMPLE", []uint32{513}, 1)
	if err := checkLogonInfoNDR(good); err != nil {
		t.Fatal(err)
	}
	for _, field := range []struct {
		name string
		off  int
	}{
		{"name string", 20 + 216 + 8},
		{"group array", 20 + 216 + 12 + 12},
		{"domain string", 20 + 216 + 12 + 12 + 4 + 8 + 8},
		{"SID", 20 + 216 + 12 + 12 + 4 + 8 + 12 + 16},
	} {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[field.off:], 0x10000000)
		if err := checkLogonInfoNDR(b); !errors.Is(err, ErrDefectiveToken) {
			t.Errorf("%s claiming 2²⁸: %v", field.name, err)
		}
	}
}

// FuzzCheckLogonInfoNDR: whatever the bytes, the walk does not panic, and
// what it lets through gokrb5 decodes within a small multiple of its size.
func FuzzCheckLogonInfoNDR(f *testing.F) {
	f.Add(logonInfo("alice", "EXAMPLE", []uint32{513, 1105}, 2))
	f.Add(logonInfo("bob", "EXAMPLE", nil, 0x0fffffff))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkLogonInfoNDR(b); err != nil {
			checkErrorHygiene(t, err, nil)
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		func() {
			defer func() { recover() }() // gokrb5's own faults are caught at the trust boundary
			decodeLogonInfo(b)
		}()
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20+64*uint64(len(b)) {
			t.Fatalf("decoding %d bytes of logon info allocated %d bytes", len(b), n)
		}
	})
}
