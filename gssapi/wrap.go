package gssapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"slices"
)

// Per-message TOK_IDs (RFC 4121 §4.2.6; RFC 1964 §1.2 for the old ones).
const (
	tokIDWrap       uint16 = 0x0504
	tokIDMIC        uint16 = 0x0404
	tokIDWrap1964   uint16 = 0x0201
	tokIDMIC1964    uint16 = 0x0101
	knownTokenFlags        = tokFlagSentByAcceptor | tokFlagSealed | tokFlagAcceptorSubkey
)

func (c *Context) sendFlags() byte {
	f := c.keyFlag
	if !c.initiator {
		f |= tokFlagSentByAcceptor
	}
	return f
}

func putWrapHeader(h []byte, flags byte, ec, rrc uint16, seq uint64) {
	h[0], h[1], h[2], h[3] = 0x05, 0x04, flags, 0xff
	binary.BigEndian.PutUint16(h[4:], ec)
	binary.BigEndian.PutUint16(h[6:], rrc)
	binary.BigEndian.PutUint64(h[8:], seq)
}

// Wrap appends to dst an RFC 4121 Wrap token protecting msg: sealed
// (confidentiality and integrity) when conf, integrity only otherwise. With
// enough spare capacity in dst (len(msg)+WrapOverhead+16) it does not
// allocate. msg must not overlap dst's spare capacity.
func (c *Context) Wrap(dst, msg []byte, conf bool) ([]byte, error) {
	c.send.Lock()
	defer c.send.Unlock()
	k := &c.send.keys
	seq := c.send.seq
	c.send.seq++
	start := len(dst)
	hdr := &k.hdr
	if !conf {
		// RFC 4121 §4.2.4: checksum over plaintext || header with EC and
		// RRC zero; EC then carries the checksum length.
		putWrapHeader(hdr[:], c.sendFlags(), 0, 0, seq)
		sum := k.checksum(msg, hdr[:])
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(sum)))
		dst = slices.Grow(dst, wrapHeaderLen+len(msg)+len(sum))
		dst = append(dst, hdr[:]...)
		dst = append(dst, msg...)
		return append(dst, sum...), nil
	}
	k.sealing()
	putWrapHeader(hdr[:], c.sendFlags()|tokFlagSealed, 0, 0, seq)
	plainLen := confounderLen + len(msg) + wrapHeaderLen
	// +BlockSize: room for the zero-padded final block of CBC-CTS.
	dst = slices.Grow(dst, wrapHeaderLen+plainLen+k.p.macLen+16)
	dst = append(dst, hdr[:]...)
	p := dst[start+wrapHeaderLen : start+wrapHeaderLen+plainLen]
	if _, err := rand.Read(p[:confounderLen]); err != nil {
		return dst[:start], fmt.Errorf("%w: confounder: %w", ErrFailure, err)
	}
	copy(p[confounderLen:], msg)
	copy(p[confounderLen+len(msg):], hdr[:])
	var mac []byte
	if !k.p.rfc8009 {
		mac = k.integrity(p)
		k.encryptCTS(p)
	} else {
		k.encryptCTS(p)
		mac = k.integrity(p)
	}
	dst = dst[:start+wrapHeaderLen+plainLen]
	return append(dst, mac...), nil
}

// wrapInfo is a parsed per-message token header.
type wrapInfo struct {
	flags byte
	ec    int
	rrc   int
	seq   uint64
}

// checkTokenFlags applies the RFC 4121 §4.2.2 rules for the receiving side.
func (c *Context) checkTokenFlags(flags byte) error {
	if flags&^knownTokenFlags != 0 {
		return fmt.Errorf("%w: unknown token flags %#02x", ErrDefectiveToken, flags)
	}
	fromAcceptor := flags&tokFlagSentByAcceptor != 0
	if fromAcceptor != c.initiator {
		return fmt.Errorf("%w: SentByAcceptor=%t on a token received by the %s", ErrWrongDirection, fromAcceptor, c.role())
	}
	if flags&tokFlagAcceptorSubkey != c.keyFlag {
		return fmt.Errorf("%w: AcceptorSubkey flag %t, context uses acceptor subkey %t", ErrWrongKey, flags&tokFlagAcceptorSubkey != 0, c.keyFlag != 0)
	}
	return nil
}

func (c *Context) role() string {
	if c.initiator {
		return "initiator"
	}
	return "acceptor"
}

func checkTokID(tok []byte, want uint16) error {
	if len(tok) < 2 {
		return fmt.Errorf("%w: token of %d bytes", ErrDefectiveToken, len(tok))
	}
	switch id := binary.BigEndian.Uint16(tok); {
	case id == want:
		return nil
	case id == tokIDWrap1964 || id == tokIDMIC1964:
		return fmt.Errorf("%w: RFC 1964 token %04x (RC4/DES3 context) not supported", ErrDefectiveToken, id)
	default:
		return fmt.Errorf("%w: TOK_ID %04x, want %04x", ErrDefectiveToken, id, want)
	}
}

// Unwrap verifies and, if sealed, decrypts an RFC 4121 Wrap token, appends
// the message to dst and reports whether it was sealed. It accepts any RRC
// (Windows rotates by 12 or 28) and EC. token is used as scratch and is
// overwritten. Sequence state only advances for tokens that verify.
func (c *Context) Unwrap(dst, token []byte) ([]byte, bool, error) {
	if err := checkTokID(token, tokIDWrap); err != nil {
		return dst, false, err
	}
	if len(token) < wrapHeaderLen {
		return dst, false, fmt.Errorf("%w: Wrap token of %d bytes", ErrDefectiveToken, len(token))
	}
	if token[3] != 0xff {
		return dst, false, fmt.Errorf("%w: Wrap filler %#02x", ErrDefectiveToken, token[3])
	}
	h := wrapInfo{
		flags: token[2],
		ec:    int(binary.BigEndian.Uint16(token[4:])),
		rrc:   int(binary.BigEndian.Uint16(token[6:])),
		seq:   binary.BigEndian.Uint64(token[8:]),
	}
	if err := c.checkTokenFlags(h.flags); err != nil {
		return dst, false, err
	}
	body := token[wrapHeaderLen:]
	if h.rrc != 0 && len(body) > 0 {
		rotateLeft(body, h.rrc%len(body))
	}
	c.recv.Lock()
	defer c.recv.Unlock()
	k := &c.recv.keys
	macLen := k.p.macLen
	var msg []byte
	sealed := h.flags&tokFlagSealed != 0
	if sealed {
		ctLen := len(body) - macLen
		if ctLen < confounderLen+h.ec+wrapHeaderLen {
			return dst, true, fmt.Errorf("%w: sealed Wrap token too short (%d bytes, EC %d)", ErrDefectiveToken, len(token), h.ec)
		}
		ct, mac := body[:ctLen], body[ctLen:]
		k.sealing()
		if k.p.rfc8009 && !hmac.Equal(k.integrity(ct), mac) {
			return dst, true, fmt.Errorf("%w: Wrap token HMAC", ErrBadIntegrity)
		}
		k.decryptCTS(ct)
		if !k.p.rfc8009 && !hmac.Equal(k.integrity(ct), mac) {
			return dst, true, fmt.Errorf("%w: Wrap token HMAC", ErrBadIntegrity)
		}
		// The encrypted header copy must match what was received in the
		// clear, but for RRC (zero in the copy, RFC 4121 §4.2.4). This is
		// what authenticates EC, and so the message length.
		inner := ct[ctLen-wrapHeaderLen:]
		if subtle.ConstantTimeCompare(inner[:6], token[:6]) != 1 || subtle.ConstantTimeCompare(inner[8:16], token[8:16]) != 1 {
			return dst, true, fmt.Errorf("%w: encrypted header copy differs", ErrBadIntegrity)
		}
		msg = ct[confounderLen : ctLen-h.ec-wrapHeaderLen]
	} else {
		if h.ec != macLen || len(body) < h.ec {
			return dst, false, fmt.Errorf("%w: integrity Wrap token EC %d, length %d (checksum is %d bytes)", ErrDefectiveToken, h.ec, len(body), macLen)
		}
		msg = body[:len(body)-h.ec]
		hdr := k.hdr[:]
		copy(hdr, token[:wrapHeaderLen])
		clear(hdr[4:8])
		if !hmac.Equal(k.checksum(msg, hdr), body[len(body)-h.ec:]) {
			return dst, false, fmt.Errorf("%w: Wrap token checksum", ErrBadIntegrity)
		}
	}
	if err := c.recv.seq.check(h.seq); err != nil {
		return dst, sealed, err
	}
	return append(dst, msg...), sealed, nil
}

// GetMIC appends an RFC 4121 MIC token over msg to dst.
func (c *Context) GetMIC(dst, msg []byte) []byte {
	c.send.Lock()
	defer c.send.Unlock()
	seq := c.send.seq
	c.send.seq++
	hdr := &c.send.keys.hdr
	hdr[0], hdr[1], hdr[2] = 0x04, 0x04, c.sendFlags()
	hdr[3], hdr[4], hdr[5], hdr[6], hdr[7] = 0xff, 0xff, 0xff, 0xff, 0xff
	binary.BigEndian.PutUint64(hdr[8:], seq)
	sum := c.send.keys.micChecksum(msg, hdr[:])
	dst = append(dst, hdr[:]...)
	return append(dst, sum...)
}

// VerifyMIC checks an RFC 4121 MIC token over msg.
func (c *Context) VerifyMIC(msg, token []byte) error {
	if err := checkTokID(token, tokIDMIC); err != nil {
		return err
	}
	c.recv.Lock()
	defer c.recv.Unlock()
	k := &c.recv.keys
	if len(token) != micHeaderLen+k.p.macLen {
		return fmt.Errorf("%w: MIC token of %d bytes", ErrDefectiveToken, len(token))
	}
	for _, b := range token[3:8] {
		if b != 0xff {
			return fmt.Errorf("%w: MIC filler", ErrDefectiveToken)
		}
	}
	flags := token[2]
	if flags&tokFlagSealed != 0 {
		return fmt.Errorf("%w: Sealed flag on a MIC token", ErrDefectiveToken)
	}
	if err := c.checkTokenFlags(flags); err != nil {
		return err
	}
	if !hmac.Equal(k.micChecksum(msg, token[:micHeaderLen]), token[micHeaderLen:]) {
		return fmt.Errorf("%w: MIC checksum", ErrBadIntegrity)
	}
	return c.recv.seq.check(binary.BigEndian.Uint64(token[8:]))
}

// rotateLeft rotates b left by r bytes in place (undoes a right rotation by
// RRC, RFC 4121 §4.2.5).
func rotateLeft(b []byte, r int) {
	slices.Reverse(b[:r])
	slices.Reverse(b[r:])
	slices.Reverse(b)
}
