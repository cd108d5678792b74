package gssapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// ktEntry is one keytab entry as a test writes it.
type ktEntry struct {
	principal string // "comp/comp@REALM"
	nameType  int32
	kvno8     uint8
	kvno32    uint32 // written when has32
	has32     bool
	enctype   int32
	key       []byte
}

// aesEntry is an entry as MIT's kadmin ktadd writes it: 8-bit kvno and the
// 32-bit one.
func aesEntry(principal string, kvno uint32, enctype int32, key []byte) ktEntry {
	return ktEntry{principal: principal, nameType: 1, kvno8: uint8(kvno), kvno32: kvno, has32: true, enctype: enctype, key: key}
}

// keytabBytes writes a keytab (version 2, or 1 in the host byte order).
func keytabBytes(version byte, entries ...ktEntry) []byte {
	b := []byte{5, version}
	for _, e := range entries {
		b = appendRecord(b, version, entryBytes(version, e))
	}
	return b
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func order(version byte) byteOrder {
	if version == 1 {
		return binary.NativeEndian
	}
	return binary.BigEndian
}

func appendRecord(b []byte, version byte, rec []byte) []byte {
	b = order(version).AppendUint32(b, uint32(len(rec)))
	return append(b, rec...)
}

func entryBytes(version byte, e ktEntry) []byte {
	o := order(version)
	name, realm, _ := strings.Cut(e.principal, "@")
	comps := strings.Split(name, "/")
	var b []byte
	n := len(comps)
	if version == 1 {
		n++
	}
	b = o.AppendUint16(b, uint16(n))
	b = o.AppendUint16(b, uint16(len(realm)))
	b = append(b, realm...)
	for _, c := range comps {
		b = o.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	if version != 1 {
		b = o.AppendUint32(b, uint32(e.nameType))
	}
	b = o.AppendUint32(b, uint32(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Unix()))
	b = append(b, e.kvno8)
	b = o.AppendUint16(b, uint16(e.enctype))
	b = o.AppendUint16(b, uint16(len(e.key)))
	b = append(b, e.key...)
	if e.has32 {
		b = o.AppendUint32(b, e.kvno32)
	}
	return b
}

// Distinctive keys: a leak of any of them into an error text is
// unmistakable.
var (
	testKey16 = []byte("\xa5KEY16\x00\xff\x10secret!")
	testKey32 = []byte("\x5aKEY32-\x80\x81\x82\x83\x84\x85 not-to-be-seen!\xfe\xfd?")
)

// keyLeaks reports whether s shows any part of key of 8 bytes or more:
// raw, hex (either case) or base64 (any alphabet, any alignment).
func keyLeaks(s string, key []byte) bool {
	const w = 8
	for i := 0; i+w <= len(key); i++ {
		win := key[i : i+w]
		lower := hex.EncodeToString(win)
		if strings.Contains(s, string(win)) || strings.Contains(strings.ToLower(s), lower) {
			return true
		}
	}
	for shift := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if shift >= len(key) {
				continue
			}
			full := enc.EncodeToString(key[shift:])
			// The first 12 characters encode 9 whole bytes.
			for i := 0; i+12 <= len(full); i += 4 {
				if strings.Contains(s, full[i:i+12]) {
					return true
				}
			}
		}
	}
	return false
}

func TestKeyLeaksDetects(t *testing.T) {
	// The checker must see what gokrb5 does: its errors quote the file.
	b := keytabBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32))
	err := keytab.New().Unmarshal(b[:len(b)-6])
	if err == nil || !keyLeaks(err.Error(), testKey32) {
		t.Fatalf("gokrb5's error on a truncated keytab (%v) is not seen as a leak", err)
	}
	for _, s := range []string{string(testKey32[3:11]), hex.EncodeToString(testKey32[10:20]), strings.ToUpper(hex.EncodeToString(testKey16)),
		base64.StdEncoding.EncodeToString(testKey32), base64.RawURLEncoding.EncodeToString(testKey32[1:])} {
		if !keyLeaks("x "+s+" y", append(slices.Clone(testKey16), testKey32...)) {
			t.Errorf("leak %q not detected", s)
		}
	}
	if keyLeaks(`gssapi: keytab "/k": entry 2: truncated: record of 96 bytes, 40 left`, testKey32) {
		t.Fatal("false positive")
	}
}

func TestParseKeytab(t *testing.T) {
	alias := aesEntry("HTTP/web.example.test@EXAMPLE.TEST", 3, EnctypeAES128SHA1, testKey16)
	for _, version := range []byte{1, 2} {
		b := keytabBytes(version,
			aesEntry("rcmd/gw.example.test@EXAMPLE.TEST", 300, EnctypeAES256SHA1, testKey32),
			ktEntry{principal: "socks/gw@EXAMPLE.TEST", nameType: 1, kvno8: 7, enctype: EnctypeAES128SHA1, key: testKey16},              // no 32-bit kvno
			ktEntry{principal: "socks/gw@EXAMPLE.TEST", nameType: 1, kvno8: 9, has32: true, enctype: EnctypeAES128SHA1, key: testKey16}, // zero-filled: 8-bit counts
		)
		// A hole (a removed entry) and an entry after it.
		b = order(version).AppendUint32(b, uint32(0xffffffff-9)) // -10
		b = append(b, make([]byte, 10)...)
		b = appendRecord(b, version, entryBytes(version, alias))
		kt, err := ParseKeytab(b)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		got := KeytabPrincipals(kt)
		want := []Principal{{"rcmd/gw.example.test", "EXAMPLE.TEST"}, {"socks/gw", "EXAMPLE.TEST"}, {"HTTP/web.example.test", "EXAMPLE.TEST"}}
		if !slices.Equal(got, want) {
			t.Fatalf("version %d: principals %v", version, got)
		}
		if kvnos := []uint32{kt.Entries[0].KVNO, kt.Entries[1].KVNO, kt.Entries[2].KVNO, kt.Entries[3].KVNO}; !slices.Equal(kvnos, []uint32{300, 7, 9, 3}) {
			t.Fatalf("version %d: kvnos %v", version, kvnos)
		}
		if !bytes.Equal(kt.Entries[0].Key.KeyValue, testKey32) {
			t.Fatal("key")
		}
	}
	t.Run("zero length ends the keytab", func(t *testing.T) {
		// What a reader sees during MIT's append: the new record's length
		// is still 0 and its bytes may be half written.
		b := keytabBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32))
		b = append(b, 0, 0, 0, 0)
		b = append(b, entryBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 3, EnctypeAES256SHA1, testKey32))[:20]...)
		kt, err := ParseKeytab(b)
		if err != nil || len(kt.Entries) != 1 {
			t.Fatalf("%v, %d entries", err, len(kt.Entries))
		}
	})
	t.Run("empty keytab", func(t *testing.T) {
		kt, err := ParseKeytab([]byte{5, 2})
		if err != nil || len(kt.Entries) != 0 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("golden keytab", func(t *testing.T) {
		kt, err := ParseKeytab(golden.Keytab())
		if err != nil || len(kt.Entries) == 0 {
			t.Fatalf("%v", err)
		}
	})
}

// TestParseKeytabErrors: each damage gets its own message, naming the
// entry, with a typed error.
func TestParseKeytabErrors(t *testing.T) {
	good := aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32)
	two := keytabBytes(2, good, good)
	rec := entryBytes(2, good)
	withRecord := func(r []byte) []byte { return appendRecord(keytabBytes(2, good), 2, r) }
	patch := func(r []byte, off int, v uint16) []byte {
		r = slices.Clone(r)
		binary.BigEndian.PutUint16(r[off:], v)
		return r
	}
	// Offsets in rec: count 0, realm length 2, realm 4..16, comp length 16.
	keyLenOff := len(rec) - 4 - len(testKey32) - 2
	cases := []struct {
		name  string
		b     []byte
		entry int
		want  string
	}{
		{"empty file", nil, 0, "truncated: 0 bytes, not even a version"},
		{"one byte", []byte{5}, 0, "truncated: 1 bytes"},
		{"bad version", []byte{5, 3, 0, 0, 0, 0}, 0, "bad version 0x0503"},
		{"gzip file", []byte{0x1f, 0x8b, 8, 0}, 0, "bad version 0x1f8b"},
		{"truncated record", two[:len(two)-10], 2, "truncated: record of 75 bytes, 65 left"},
		{"truncated length", two[:len(two)-len(rec)-2], 2, "truncated in its length field (2 bytes left)"},
		{"hole beyond the end", append(slices.Clone(two), 0xff, 0xff, 0xff, 0x00), 3, "truncated: a hole of 256 bytes before it, 0 left"},
		{"impossible hole", append(slices.Clone(two), 0x80, 0, 0, 0), 3, "a hole of 2147483648 bytes"},
		{"component length", withRecord(patch(rec, 16, 900)), 2, "principal component length 900 exceeds the entry (57 bytes left)"},
		{"realm length", withRecord(patch(rec, 2, 0x8001)), 2, "realm length -32767"},
		{"empty realm", withRecord(patch(rec, 2, 0)), 2, "realm length 0"},
		{"no components", withRecord(patch(rec, 0, 0)), 2, "principal of 0 components"},
		{"key length", withRecord(patch(rec, keyLenOff, 900)), 2, "key length 900 exceeds the entry (36 bytes left)"},
		{"empty key", withRecord(patch(rec, keyLenOff, 0)), 2, "key length 0"},
		{"short AES key", keytabBytes(2, good, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey16)), 2, "aes256-cts-hmac-sha1-96 key of 16 bytes, want 32"},
		{"entry ends in header", withRecord(rec[:30]), 2, "ends inside its timestamp, kvno or enctype"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKeytab(c.b)
			ke, ok := errors.AsType[*KeytabError](err)
			if !ok || !errors.Is(err, ErrBadKeytab) || ke.Entry != c.entry || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (entry %d), want entry %d: %q", err, ke.Entry, c.entry, c.want)
			}
			if keyLeaks(err.Error(), testKey32) || keyLeaks(err.Error(), testKey16) {
				t.Fatalf("error shows key bytes: %s", err)
			}
		})
	}
}

func TestLoadKeytab(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.keytab")
	b := keytabBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if kt, err := LoadKeytab(path); err != nil || len(kt.Entries) != 1 {
		t.Fatalf("%v", err)
	}
	os.WriteFile(path, b[:len(b)-1], 0o600)
	_, err := LoadKeytab(path)
	if ke, ok := errors.AsType[*KeytabError](err); !ok || ke.Path != path || ke.Entry != 1 ||
		err.Error() != `gssapi: keytab "`+path+`": entry 1: truncated: record of 75 bytes, 74 left` {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := LoadKeytab(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrBadKeytab) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := LoadKeytab(dir); !errors.Is(err, ErrBadKeytab) {
		t.Fatalf("directory: %v", err)
	}
	big := append([]byte{5, 2}, make([]byte, maxKeytabSize)...)
	os.WriteFile(path, big, 0o600)
	if _, err := LoadKeytab(path); !errors.Is(err, ErrBadKeytab) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize: %v", err)
	}
}

// damagedKeytabs returns truncations of b at every length, and seeded
// random corruptions and random files.
func damagedKeytabs(b []byte) [][]byte {
	var out [][]byte
	for n := range len(b) {
		out = append(out, b[:n])
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		c := slices.Clone(b)
		for range 1 + r.IntN(4) {
			i := r.IntN(len(c))
			switch r.IntN(3) {
			case 0:
				c[i] ^= byte(1 << r.IntN(8))
			case 1:
				c[i] = byte(r.Uint32())
			default:
				c[i] = []byte{0, 0x7f, 0x80, 0xff}[r.IntN(4)]
			}
		}
		out = append(out, c)
	}
	for range 500 {
		c := make([]byte, r.IntN(200))
		for i := range c {
			c[i] = byte(r.Uint32())
		}
		if len(c) >= 2 && r.IntN(2) == 0 {
			c[0], c[1] = 5, 2
		}
		out = append(out, c)
	}
	return out
}

// TestDamagedKeytabsNeverShowKeys: truncated, corrupted and random
// keytabs, parsed and loaded from a file: every error is a KeytabError and
// none shows key bytes, raw, hex or base64. The keytab holds both test
// keys and the golden keytab's real keys.
func TestDamagedKeytabsNeverShowKeys(t *testing.T) {
	gold, err := ParseKeytab(golden.Keytab())
	if err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{testKey16, testKey32}
	for _, e := range gold.Entries {
		keys = append(keys, e.Key.KeyValue)
	}
	b := keytabBytes(2,
		aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32),
		aesEntry("socks/gw@EXAMPLE.TEST", 2, EnctypeAES128SHA1, testKey16))
	b = append(b, golden.Keytab()[2:]...)
	path := filepath.Join(t.TempDir(), "damaged.keytab")
	failures := 0
	for _, d := range damagedKeytabs(b) {
		_, err1 := ParseKeytab(d)
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err2 := LoadKeytab(path)
		for _, err := range []error{err1, err2} {
			if err == nil {
				continue
			}
			failures++
			if !errors.Is(err, ErrBadKeytab) {
				t.Fatalf("not ErrBadKeytab: %v", err)
			}
			for _, k := range keys {
				if keyLeaks(err.Error(), k) {
					t.Fatalf("error shows key bytes: %s", err)
				}
			}
		}
	}
	if failures < 1000 {
		t.Fatalf("only %d of the damaged keytabs were refused", failures)
	}
}

// FuzzParseKeytab: the loader never panics, its errors are KeytabErrors
// of bounded printable text that never show the seeds' keys, and what it
// accepts gokrb5 can write back and it reads again alike.
func FuzzParseKeytab(f *testing.F) {
	f.Add(golden.Keytab())
	f.Add(keytabBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32), aesEntry("socks/gw@EXAMPLE.TEST", 2, EnctypeAES128SHA1, testKey16)))
	f.Add(keytabBytes(1, aesEntry("rcmd/gw@EXAMPLE.TEST", 2, EnctypeAES256SHA1, testKey32)))
	f.Add(append(keytabBytes(2, aesEntry("a/b@R", 300, 23, testKey16)), 0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
	f.Add([]byte{5, 2, 0, 0, 0, 0, 'j', 'u', 'n', 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		kt, err := ParseKeytab(b)
		if err != nil {
			if _, ok := errors.AsType[*KeytabError](err); !ok || !errors.Is(err, ErrBadKeytab) || kt != nil {
				t.Fatalf("error %v (%T)", err, err)
			}
			s := err.Error()
			if len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("error text %q", s)
			}
			if keyLeaks(s, testKey16) || keyLeaks(s, testKey32) {
				t.Fatalf("error shows key bytes: %s", s)
			}
			return
		}
		for _, e := range kt.Entries {
			if n := EnctypeKeyLen(e.Key.KeyType); n != 0 && len(e.Key.KeyValue) != n || len(e.Key.KeyValue) == 0 || len(e.Principal.Components) == 0 {
				t.Fatalf("accepted entry %v", e.Principal)
			}
		}
		if b[1] != 2 {
			return // gokrb5 writes version 1 component counts wrong
		}
		again, err := kt.Marshal()
		if err != nil {
			return // gokrb5 cannot write every name it reads; not ours to check
		}
		kt2, err := ParseKeytab(again)
		if err != nil || len(kt2.Entries) != len(kt.Entries) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
