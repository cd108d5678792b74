package gssapi

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"strings"
)

// SPNEGO (RFC 4178) as an acceptor sees it in one round trip: the client's
// first token is a NegTokenInit
//
//	60 len 06 06 2b0601050502        InitialContextToken, SPNEGO OID (RFC 2743 §3.1)
//	  a0 len 30 len                  negTokenInit [0] NegTokenInit
//	    a0 len 30 len {06 ..}...     mechTypes [0] MechTypeList, preferred first
//	    a1 len 03 ..                 reqFlags [1] (ignored, RFC 4178 §4.2.1)
//	    a2 len 04 len <krb5 token>   mechToken [2]: the optimistic token
//	    a3 len 04 len <MIC>          mechListMIC [3]
//
// and the answer a NegTokenResp (no InitialContextToken framing):
//
//	a1 len 30 len
//	  a0 03 0a 01 00                 negState [0] accept-completed
//	  a1 len 06 ..                   supportedMech [1]
//	  a2 len 04 len <AP-REP>         responseToken [2]
//	  a3 len 04 len <MIC>            mechListMIC [3]
//
// RFC 1961 servers give the GSS-API exchange one round trip, so this
// acceptor completes SPNEGO only with an optimistic Kerberos token for the
// client's first choice of mechanism, as MIT's and Windows' initiators
// send it. A counter-proposal (RFC 4178 §3: request-mic, a second
// mechanism token, then the MIC exchange) would need two more legs, and a
// client whose first choice is not Kerberos is refused with
// ErrNoKrb5Mech.
//
// mechListMIC (RFC 4178 §5): the MIC exchange is optional when the
// negotiated mechanism is the first choice of both peers, which is the only
// case accepted here (Kerberos is this acceptor's only mechanism). Windows
// lists the Microsoft Kerberos OID 1.2.840.48018.1.2.2 first and sends its
// token under the standard OID; MIT (negotiate_mech) and Heimdal
// (_gss_spnego_require_mechlist_mic) treat that OID as Kerberos in first
// place, needing no MIC, and answer with the OID the client listed first:
// so does this acceptor. A MIC is therefore sent only when the client sent
// one: it must verify, over the DER MechTypeList exactly as the client
// encoded it, and is answered with ours (a peer that sent a MIC expects
// one). Sending a MIC unasked would make MIT's initiator answer with its
// own, in a leg RFC 1961 does not have.

// OIDs in DER, tag and length included.
var (
	// spnegoOID is 1.3.6.1.5.5.2 (RFC 4178 §3).
	spnegoOID = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
	// msKrb5OID is 1.2.840.48018.1.2.2, the Kerberos OID with Microsoft's
	// historical error, which Windows lists first.
	msKrb5OID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
)

// mechNames names the mechanisms SPNEGO clients commonly offer, for error
// texts; others are shown as dotted OIDs.
var mechNames = map[string]string{
	string(krb5OID):   "Kerberos V5",
	string(msKrb5OID): "Kerberos V5 (Microsoft OID)",
	string([]byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}): "NTLM",
	string([]byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x1e}): "NegoEx",
	string([]byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x02, 0x05}):                         "IAKERB",
	string(spnegoOID): "SPNEGO",
}

// Bounds of what parseNegTokenInit accepts. Windows offers four mechanisms,
// MIT two or three.
const (
	maxMechTypes = 16
	maxOIDLen    = 32 // content bytes of one mechanism OID
)

// SPNEGO negState values (RFC 4178 §4.2.2).
const negStateAcceptCompleted = 0

// negTokenInit is a parsed NegTokenInit; its slices point into the token.
type negTokenInit struct {
	// mechTypes is the DER MechTypeList (30 len OIDs) as the client
	// encoded it: what a mechListMIC covers.
	mechTypes []byte
	mechs     [][]byte // each mechanism's OID, tag and length included
	mechToken []byte   // nil when absent
	mic       []byte   // mechListMIC; nil when absent
}

// isSPNEGO reports whether tok is an InitialContextToken of the SPNEGO
// mechanism (60 len 06 06 2b0601050502 ...), without checking more.
func isSPNEGO(tok []byte) bool {
	if len(tok) < 2 || tok[0] != 0x60 {
		return false
	}
	_, hdr, err := derLength(tok[1:])
	return err == nil && bytes.HasPrefix(tok[1+hdr:], spnegoOID)
}

// parseNegTokenInit parses an InitialContextToken carrying a NegTokenInit
// (RFC 4178 §4.2.1). Every element must be definite-length DER spanning
// exactly its parent; fields come in tag order, at most once each; context
// fields after [3] (the ASN.1 extension marker) are skipped. Errors wrap
// ErrDefectiveToken.
func parseNegTokenInit(tok []byte) (negTokenInit, error) {
	var n negTokenInit
	if len(tok) > maxContextToken {
		return n, fmt.Errorf("%w: SPNEGO token of %d bytes exceeds %d", ErrDefectiveToken, len(tok), maxContextToken)
	}
	tag, body, rest, err := derTLV(tok)
	if err != nil || tag != 0x60 || len(rest) != 0 || !bytes.HasPrefix(body, spnegoOID) {
		return n, fmt.Errorf("%w: SPNEGO InitialContextToken framing", ErrDefectiveToken)
	}
	tag, choice, rest, err := derTLV(body[len(spnegoOID):])
	if err != nil || len(rest) != 0 {
		return n, fmt.Errorf("%w: SPNEGO NegotiationToken framing", ErrDefectiveToken)
	}
	if tag != 0xa0 {
		return n, fmt.Errorf("%w: SPNEGO initial token is not a NegTokenInit (tag %#02x)", ErrDefectiveToken, tag)
	}
	seq, err := derOnly(choice, 0x30, "NegTokenInit")
	if err != nil {
		return n, err
	}
	last := -1
	for len(seq) > 0 {
		tag, field, next, err := derTLV(seq)
		if err != nil {
			return n, fmt.Errorf("%w: NegTokenInit field", ErrDefectiveToken)
		}
		seq = next
		if tag&0xe0 != 0xa0 { // context-specific, constructed
			return n, fmt.Errorf("%w: NegTokenInit field tag %#02x", ErrDefectiveToken, tag)
		}
		num := int(tag & 0x1f)
		if num <= last {
			return n, fmt.Errorf("%w: NegTokenInit field [%d] out of order or repeated", ErrDefectiveToken, num)
		}
		last = num
		switch num {
		case 0:
			if err := n.parseMechTypes(field); err != nil {
				return n, err
			}
		case 1:
			if _, err := derOnly(field, 0x03, "reqFlags"); err != nil {
				return n, err
			}
		case 2:
			if n.mechToken, err = derOnly(field, 0x04, "mechToken"); err != nil {
				return n, err
			}
			if len(n.mechToken) == 0 {
				return n, fmt.Errorf("%w: empty SPNEGO mechToken", ErrDefectiveToken)
			}
		case 3:
			if n.mic, err = derOnly(field, 0x04, "mechListMIC"); err != nil {
				return n, err
			}
			if len(n.mic) == 0 {
				return n, fmt.Errorf("%w: empty SPNEGO mechListMIC", ErrDefectiveToken)
			}
		}
	}
	if n.mechTypes == nil {
		return n, fmt.Errorf("%w: NegTokenInit without mechTypes", ErrDefectiveToken)
	}
	return n, nil
}

// parseMechTypes reads the MechTypeList of field [0].
func (n *negTokenInit) parseMechTypes(field []byte) error {
	tag, list, rest, err := derTLV(field)
	if err != nil || tag != 0x30 || len(rest) != 0 {
		return fmt.Errorf("%w: SPNEGO mechTypes is not a SEQUENCE OF", ErrDefectiveToken)
	}
	n.mechTypes = field
	for len(list) > 0 {
		tag, oid, next, err := derTLV(list)
		if err != nil || tag != 0x06 || len(oid) == 0 || len(oid) > maxOIDLen {
			return fmt.Errorf("%w: SPNEGO mechTypes element is not an OID of 1 to %d bytes", ErrDefectiveToken, maxOIDLen)
		}
		if len(n.mechs) == maxMechTypes {
			return fmt.Errorf("%w: SPNEGO mechTypes lists more than %d mechanisms", ErrDefectiveToken, maxMechTypes)
		}
		n.mechs = append(n.mechs, list[:len(list)-len(next)])
		list = next
	}
	if len(n.mechs) == 0 {
		return fmt.Errorf("%w: SPNEGO mechTypes is empty", ErrDefectiveToken)
	}
	return nil
}

// krb5Token picks the Kerberos mechanism: it must be the client's first
// choice and the optimistic token must be there and be a Kerberos
// InitialContextToken. It returns the OID to answer as supportedMech (the
// client's first, as listed) and the token under the standard Kerberos OID
// (MIT's acceptor also takes a token framed with the Microsoft OID).
func (n *negTokenInit) krb5Token() (supported, token []byte, err error) {
	first := n.mechs[0]
	if !isKrb5Mech(first) {
		for i, m := range n.mechs {
			if isKrb5Mech(m) {
				return nil, nil, fmt.Errorf("%w: the client prefers %s (offered: %s); Kerberos is its choice %d, and a counter-proposal needs more round trips than RFC 1961 gives",
					ErrNoKrb5Mech, mechName(first), n.offered(), i+1)
			}
		}
		return nil, nil, fmt.Errorf("%w: the client offers %s and no Kerberos V5", ErrNoKrb5Mech, n.offered())
	}
	if n.mechToken == nil {
		return nil, nil, fmt.Errorf("%w: no optimistic Kerberos token (offered: %s); the client waits for a mechanism choice, which needs more round trips than RFC 1961 gives", ErrNoKrb5Mech, n.offered())
	}
	tok := n.mechToken
	tag, body, rest, err := derTLV(tok)
	if err != nil || tag != 0x60 || len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: the SPNEGO mechToken for %s is not an InitialContextToken", ErrDefectiveToken, mechName(first))
	}
	switch {
	case bytes.HasPrefix(body, krb5OID):
	case bytes.HasPrefix(body, msKrb5OID):
		tok = appendTLV(nil, 0x60, append(bytes.Clone(krb5OID), body[len(msKrb5OID):]...))
	default:
		return nil, nil, fmt.Errorf("%w: the SPNEGO mechToken is not for %s, the mechanism listed first", ErrDefectiveToken, mechName(first))
	}
	return first, tok, nil
}

// offered lists the client's mechanisms by name.
func (n *negTokenInit) offered() string {
	names := make([]string, len(n.mechs))
	for i, m := range n.mechs {
		names[i] = mechName(m)
	}
	return strings.Join(names, ", ")
}

func isKrb5Mech(oid []byte) bool { return bytes.Equal(oid, krb5OID) || bytes.Equal(oid, msKrb5OID) }

// mechName names a mechanism OID (DER, tag included) for error texts.
func mechName(oid []byte) string {
	if n, ok := mechNames[string(oid)]; ok {
		return n
	}
	var o asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(oid, &o); err == nil && len(rest) == 0 {
		return o.String()
	}
	return "an undecodable OID"
}

// appendNegTokenResp appends a NegTokenResp with negState accept-completed
// (RFC 4178 §4.2.2); responseToken and mic are left out when nil.
func appendNegTokenResp(dst, supportedMech, responseToken, mic []byte) []byte {
	var seq []byte
	seq = appendTLV(seq, 0xa0, []byte{0x0a, 0x01, negStateAcceptCompleted})
	seq = appendTLV(seq, 0xa1, supportedMech)
	if responseToken != nil {
		seq = appendTLV(seq, 0xa2, appendTLV(nil, 0x04, responseToken))
	}
	if mic != nil {
		seq = appendTLV(seq, 0xa3, appendTLV(nil, 0x04, mic))
	}
	return appendTLV(dst, 0xa1, appendTLV(nil, 0x30, seq))
}

// finish is reply, answered in SPNEGO when the client's token was: the
// client's mechListMIC, if any, must verify and is answered with ours; the
// AP-REP goes back as responseToken when the client asked for mutual
// authentication (MIT's SPNEGO initiator refuses a response token for a
// Kerberos context it already holds complete).
func (s *acceptState) finish() (*Context, []byte, error) {
	ctx, apRep, err := s.reply()
	if err != nil || s.spnego == nil {
		return ctx, apRep, err
	}
	n := s.spnego
	var mic []byte
	if n.mic != nil {
		if ctx.VerifyMIC(n.mechTypes, n.mic) != nil {
			return nil, nil, fmt.Errorf("%w: the SPNEGO mechListMIC does not verify", ErrBadIntegrity)
		}
		mic = ctx.GetMIC(nil, n.mechTypes)
	}
	if !s.mutual() {
		apRep = nil
	}
	ctx.spnego = true
	return ctx, appendNegTokenResp(nil, s.spnegoMech, apRep, mic), nil
}

// SPNEGO reports whether the client wrapped its Kerberos token in SPNEGO
// (RFC 4178): the context is the Kerberos one all the same.
func (c *Context) SPNEGO() bool { return c.spnego }

// derTLV splits the first DER element off b: its tag (one byte; the
// messages parsed here use no tag numbers above 30), its content and what
// follows. Only definite lengths of up to three bytes are accepted.
func derTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: truncated DER element", ErrDefectiveToken)
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: DER tag %#02x with a high tag number", ErrDefectiveToken, tag)
	}
	n, hdr, err := derLength(b[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	if n > len(b)-1-hdr {
		return 0, nil, nil, fmt.Errorf("%w: DER element of %d bytes, %d left", ErrDefectiveToken, n, len(b)-1-hdr)
	}
	return tag, b[1+hdr : 1+hdr+n], b[1+hdr+n:], nil
}

// derOnly returns the content of the one element of b, which must have tag
// want and span b.
func derOnly(b []byte, want byte, what string) ([]byte, error) {
	tag, content, rest, err := derTLV(b)
	if err != nil || tag != want || len(rest) != 0 {
		return nil, fmt.Errorf("%w: SPNEGO %s is not a single element of tag %#02x", ErrDefectiveToken, what, want)
	}
	return content, nil
}

func appendTLV(dst []byte, tag byte, content []byte) []byte {
	dst = append(dst, tag)
	dst = appendDERLength(dst, len(content))
	return append(dst, content...)
}
