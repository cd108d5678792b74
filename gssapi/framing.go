package gssapi

import (
	"bytes"
	"fmt"
)

// krb5OID is the DER encoding of the Kerberos V5 mechanism OID
// 1.2.840.113554.1.2.2 (RFC 1964 §1), tag and length included.
var krb5OID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// Context-establishment TOK_IDs (RFC 1964 §1.1, RFC 4121 §4.1).
const (
	tokIDAPReq    uint16 = 0x0100
	tokIDAPRep    uint16 = 0x0200
	tokIDKRBError uint16 = 0x0300
)

// maxContextToken bounds what we parse: RFC 1961 tokens are at most 65535
// bytes, and AD tickets with large PACs stay well below.
const maxContextToken = 1 << 16

// parseInitialToken parses the RFC 2743 §3.1 framing
// 0x60 len OID TOK_ID(2) body and returns the TOK_ID and body. The framing
// must span the whole input.
func parseInitialToken(tok []byte) (uint16, []byte, error) {
	if len(tok) > maxContextToken {
		return 0, nil, fmt.Errorf("%w: context token of %d bytes exceeds %d", ErrDefectiveToken, len(tok), maxContextToken)
	}
	if len(tok) < 2 || tok[0] != 0x60 {
		return 0, nil, fmt.Errorf("%w: not an InitialContextToken (first byte %#02x)", ErrDefectiveToken, first(tok))
	}
	n, hdr, err := derLength(tok[1:])
	if err != nil {
		return 0, nil, err
	}
	inner := tok[1+hdr:]
	if n != len(inner) {
		return 0, nil, fmt.Errorf("%w: InitialContextToken length %d, have %d bytes", ErrDefectiveToken, n, len(inner))
	}
	if len(inner) < 2 || inner[0] != 0x06 {
		return 0, nil, fmt.Errorf("%w: InitialContextToken has no mechanism OID", ErrDefectiveToken)
	}
	if !bytes.HasPrefix(inner, krb5OID) {
		return 0, nil, fmt.Errorf("%w: mechanism OID %x", ErrBadMech, inner[:min(len(inner), 2+int(inner[1]))])
	}
	rest := inner[len(krb5OID):]
	if len(rest) < 2 {
		return 0, nil, fmt.Errorf("%w: InitialContextToken has no TOK_ID", ErrDefectiveToken)
	}
	return uint16(rest[0])<<8 | uint16(rest[1]), rest[2:], nil
}

// appendInitialToken appends the RFC 2743 framing of body with tokID.
func appendInitialToken(dst []byte, tokID uint16, body []byte) []byte {
	n := len(krb5OID) + 2 + len(body)
	dst = append(dst, 0x60)
	dst = appendDERLength(dst, n)
	dst = append(dst, krb5OID...)
	dst = append(dst, byte(tokID>>8), byte(tokID))
	return append(dst, body...)
}

// derLength decodes a DER definite length; it returns the length and the
// number of bytes the length field used.
func derLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: truncated length", ErrDefectiveToken)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, fmt.Errorf("%w: bad length encoding", ErrDefectiveToken)
	}
	n := 0
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, nil
}

func appendDERLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x100:
		return append(dst, 0x81, byte(n))
	case n < 0x10000:
		return append(dst, 0x82, byte(n>>8), byte(n))
	default:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
