package hostile

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jcmturner/gokrb5/v8/messages"
)

// krb5Mech is the DER mechanism OID 1.2.840.113554.1.2.2 of an RFC 2743
// §3.1 InitialContextToken, and tokIDAPReq the RFC 1964 TOK_ID after it.
var (
	krb5Mech   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	tokIDAPReq = []byte{0x01, 0x00}
)

// apReqOf returns the AP-REQ inside an InitialContextToken.
func apReqOf(tok []byte) ([]byte, error) {
	if len(tok) < 2 || tok[0] != 0x60 {
		return nil, errors.New("not an InitialContextToken")
	}
	n, hdr := int(tok[1]), 1
	switch {
	case tok[1] == 0x81 && len(tok) > 2:
		n, hdr = int(tok[2]), 2
	case tok[1] == 0x82 && len(tok) > 3:
		n, hdr = int(tok[2])<<8|int(tok[3]), 3
	case tok[1] >= 0x80:
		return nil, errors.New("unsupported DER length")
	}
	inner := tok[1+hdr:]
	prefix := append(append([]byte{}, krb5Mech...), tokIDAPReq...)
	if n != len(inner) || !bytes.HasPrefix(inner, prefix) {
		return nil, errors.New("bad InitialContextToken framing")
	}
	return inner[len(prefix):], nil
}

// initialToken frames an AP-REQ as an InitialContextToken.
func initialToken(apReq []byte) []byte {
	n := len(krb5Mech) + len(tokIDAPReq) + len(apReq)
	out := []byte{0x60}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	out = append(out, krb5Mech...)
	out = append(out, tokIDAPReq...)
	return append(out, apReq...)
}

// rewriteAPReq decodes the AP-REQ in tok, lets edit change it and encodes
// it again: the authenticator and the ticket's encrypted part stay the
// bytes the client made unless edit changes them.
func rewriteAPReq(tok []byte, edit func(*messages.APReq)) ([]byte, error) {
	body, err := apReqOf(tok)
	if err != nil {
		return nil, err
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		return nil, err
	}
	edit(&req)
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return initialToken(b), nil
}

// keyWindow is the length of the pieces of a key looked for in logs: long
// enough that a match is no accident, short enough to catch a key cut or
// partly escaped. A raw piece must show at least minASCII of its bytes
// as themselves (the others may have been replaced, see keyLeak).
const (
	keyWindow = 12
	minASCII  = 4
)

// keyForms lists the text forms a piece of a key can take besides its
// bytes: hex, a decimal byte list (%v of a []byte), and base64 of the
// whole key.
func keyForms(key []byte) []string {
	var forms []string
	for i := 0; i+keyWindow <= len(key); i++ {
		w := key[i : i+keyWindow]
		dec := make([]string, len(w))
		for j, c := range w {
			dec[j] = strconv.Itoa(int(c))
		}
		forms = append(forms, hex.EncodeToString(w), strings.ToUpper(hex.EncodeToString(w)), strings.Join(dec, " "))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString(key))
	}
	return forms
}

// unescape undoes the escapes loggers put on raw bytes (Go's \xNN, \t,
// \uXXXX...; JSON's \uXXXX), leaving everything else as it is: a log line
// of hclog's text format mixes escaped control bytes with raw ones.
func unescape(s string) []byte {
	out := make([]byte, 0, len(s))
	simple := map[byte]byte{'a': 7, 'b': 8, 'f': 12, 'n': 10, 'r': 13, 't': 9, 'v': 11, '\\': '\\', '"': '"', '\'': '\''}
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			out = append(out, s[i])
			continue
		}
		if c, ok := simple[s[i+1]]; ok {
			out = append(out, c)
			i++
			continue
		}
		if s[i+1] == 'x' && i+4 <= len(s) {
			if b, err := hex.DecodeString(s[i+2 : i+4]); err == nil {
				out = append(out, b[0])
				i += 3
				continue
			}
		}
		if s[i+1] == 'u' && i+6 <= len(s) {
			if r, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil {
				out = utf8.AppendRune(out, rune(r))
				i += 5
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}

// highByte stands for any byte of 0x80 and above once masked: loggers
// print such key bytes raw, or replace each with U+FFFD (hclog, JSON),
// so only the bytes below 0x80 are sure to survive, verbatim or escaped.
const highByte = 0x80

// mask maps what a logger may have done to high bytes to one highByte
// each: a U+FFFD (3 bytes) or a raw byte.
func mask(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch {
		case bytes.HasPrefix(b[i:], []byte("\xef\xbf\xbd")):
			out = append(out, highByte)
			i += 2
		case b[i] >= 0x80:
			out = append(out, highByte)
		default:
			out = append(out, b[i])
		}
	}
	return out
}

// keyLeak reports the first key of keys that shows in text, without the
// key: its index and the form it takes. A key's bytes are looked for
// after undoing escapes and masking high bytes, so a key logged raw,
// Go-quoted, or with its high bytes replaced still counts: its other
// bytes are key material.
func keyLeak(text string, keys [][]byte) error {
	logged := mask(unescape(text))
	for i, k := range keys {
		mk := mask(k)
		for j := 0; j+keyWindow <= len(mk); j++ {
			w := mk[j : j+keyWindow]
			if len(w)-bytes.Count(w, []byte{highByte}) >= minASCII && bytes.Contains(logged, w) {
				return fmt.Errorf("key %d of the keytab (%d bytes) appears in the log (its bytes, raw or escaped)", i, len(k))
			}
		}
		for j, f := range keyForms(k) {
			if strings.Contains(text, f) {
				kind := []string{"hex", "HEX", "decimal"}[j%3]
				if j >= 3*(len(k)-keyWindow+1) {
					kind = "base64"
				}
				return fmt.Errorf("key %d of the keytab (%d bytes) appears in the log (%s form)", i, len(k), kind)
			}
		}
	}
	return nil
}

// redact withholds lines that hold key material, for error messages.
func redact(text string, keys [][]byte) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if keyLeak(l, keys) != nil {
			lines[i] = "[line withheld: it holds key material]"
		}
	}
	return strings.Join(lines, "\n")
}
