package testutil

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/gssapi"
)

// DamagedKeytab writes to path the keytab at src cut inside its last key
// (the 32-bit kvno after it and 6 bytes of the key are gone), mode 0600,
// and returns the keys of src. Fed to gokrb5's decoder unguarded, such a
// file yields an error that quotes the record, key bytes included.
func DamagedKeytab(tb testing.TB, src, path string) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	kt, err := gssapi.ParseKeytab(b)
	if err != nil || len(kt.Entries) == 0 {
		tb.Fatalf("keytab %s: %v", src, err)
	}
	var keys [][]byte
	for _, e := range kt.Entries {
		keys = append(keys, e.Key.KeyValue)
	}
	if err := os.WriteFile(path, b[:len(b)-10], 0o600); err != nil {
		tb.Fatal(err)
	}
	return keys
}

// KeyLeaks reports whether s shows 8 consecutive bytes of any of keys:
// raw, in hex (either case) or in base64 (standard or URL alphabet, with
// or without padding, from any of the first three offsets).
func KeyLeaks(s string, keys [][]byte) bool {
	lower := strings.ToLower(s)
	for _, key := range keys {
		for i := 0; i+8 <= len(key); i++ {
			w := key[i : i+8]
			if strings.Contains(s, string(w)) || strings.Contains(lower, hex.EncodeToString(w)) {
				return true
			}
		}
		for shift := 0; shift < 3 && shift < len(key); shift++ {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				full := enc.EncodeToString(key[shift:])
				for i := 0; i+12 <= len(full); i += 4 { // 12 characters: 9 whole bytes
					if strings.Contains(s, full[i:i+12]) {
						return true
					}
				}
			}
		}
	}
	return false
}
