package gssapi

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/adtype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/types"
)

// pacLogonInfo is the PAC buffer type of KERB_VALIDATION_INFO ([MS-PAC]
// §2.4); MIT KDCs (1.20+) issue PACs without it.
const pacLogonInfo = 1

// adInfoFromTicket extracts the AD data from the ticket's PAC
// (AD-IF-RELEVANT → AD-WIN2K-PAC), verifying the server signature with the
// service key before decoding the logon info (decodePAC). A ticket without a PAC, or whose PAC has no logon info (MIT),
// yields (nil, nil). A PAC that is present but unusable yields an error for
// the caller to log; authentication does not depend on it, and policies on
// groups then see no groups.
func adInfoFromTicket(etp *messages.EncTicketPart, serviceKey types.EncryptionKey) (info *ADInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = nil, fmt.Errorf("%w: PAC decoding failed (%s)", ErrDefectiveToken, panicText(r))
		}
	}()
	for _, ad := range etp.AuthorizationData {
		if ad.ADType != adtype.ADIfRelevant {
			continue
		}
		var inner types.AuthorizationData
		if err := inner.Unmarshal(ad.ADData); err != nil {
			return nil, fmt.Errorf("%w: AD-IF-RELEVANT is not valid AuthorizationData", ErrDefectiveToken)
		}
		for _, e := range inner {
			if e.ADType != adtype.ADWin2KPAC {
				continue
			}
			return decodePAC(e.ADData, serviceKey)
		}
	}
	return nil, nil
}

// pacHeaderSize and pacInfoBufferSize are the sizes of PACTYPE's fixed
// part (cBuffers, Version) and of one PAC_INFO_BUFFER ([MS-PAC] §2.3,
// §2.4), in bytes.
const (
	pacHeaderSize     = 8
	pacInfoBufferSize = 16
)

// checkPACHeader refuses a PAC whose cBuffers claims more PAC_INFO_BUFFERs
// than the PAC's bytes hold. gokrb5's PACType.Unmarshal allocates
// cBuffers entries before reading any: a 4-byte count from the wire would
// otherwise make it allocate up to 64 GiB (16 bytes × 2³²), which the
// runtime may have to zero page by page.
func checkPACHeader(b []byte) error {
	if len(b) < pacHeaderSize {
		return fmt.Errorf("%w: PAC shorter than its header", ErrDefectiveToken)
	}
	if uint64(binary.LittleEndian.Uint32(b)) > uint64(len(b)-pacHeaderSize)/pacInfoBufferSize {
		return fmt.Errorf("%w: PAC claims more buffers than its %d bytes hold", ErrDefectiveToken, len(b))
	}
	return nil
}

// PAC buffer types of the signatures ([MS-PAC] §2.4, §2.8).
const (
	pacServerChecksum  = 6
	pacPrivSvrChecksum = 7
)

// decodePAC verifies the PAC's server signature with the service key and
// only then decodes its logon info. gokrb5's ProcessPACInfoBuffers would
// decode every buffer first, sizing NDR arrays from counts on the wire,
// and check the signature last; it is not used. Only the logon info is
// decoded, and only after its NDR counts are checked against its bytes
// (checkLogonInfoNDR): a PAC signed by our KDC may still carry logon info
// that a trusted realm's KDC wrote.
func decodePAC(b []byte, serviceKey types.EncryptionKey) (*ADInfo, error) {
	if err := checkPACHeader(b); err != nil {
		return nil, err
	}
	var p pac.PACType
	if err := p.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: PAC does not decode", ErrDefectiveToken)
	}
	var logon, server, kdc *pac.InfoBuffer
	for i := range p.Buffers {
		buf := &p.Buffers[i]
		// Offset is a 64-bit wire value: compare without adding, which
		// could wrap around.
		if buf.Offset > uint64(len(b)) || uint64(buf.CBBufferSize) > uint64(len(b))-buf.Offset {
			return nil, fmt.Errorf("%w: PAC buffer type %d beyond the PAC", ErrDefectiveToken, buf.ULType)
		}
		var slot **pac.InfoBuffer
		switch buf.ULType {
		case pacLogonInfo:
			slot = &logon
		case pacServerChecksum:
			slot = &server
		case pacPrivSvrChecksum:
			slot = &kdc
		default:
			continue
		}
		// Two of a kind would leave open which one was signed or meant.
		if *slot != nil {
			return nil, fmt.Errorf("%w: PAC has two buffers of type %d", ErrDefectiveToken, buf.ULType)
		}
		*slot = buf
	}
	if logon == nil {
		return nil, nil
	}
	if server == nil || kdc == nil {
		return nil, fmt.Errorf("%w: PAC without its server and KDC signatures", ErrBadIntegrity)
	}
	if err := verifyPACServerSignature(b, server, kdc, serviceKey); err != nil {
		return nil, err
	}
	return decodeLogonInfo(b[logon.Offset : logon.Offset+uint64(logon.CBBufferSize)])
}

// decodeLogonInfo decodes a KERB_VALIDATION_INFO buffer ([MS-PAC] §2.5)
// with gokrb5 once its NDR counts are bounded. Errors wrap
// ErrDefectiveToken.
func decodeLogonInfo(b []byte) (*ADInfo, error) {
	if err := checkLogonInfoNDR(b); err != nil {
		return nil, err
	}
	var k pac.KerbValidationInfo
	if err := k.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: PAC logon info does not decode", ErrDefectiveToken)
	}
	info := &ADInfo{
		UserSID:   fmt.Sprintf("%s-%d", k.LogonDomainID.String(), k.UserID),
		GroupSIDs: k.GetGroupMembershipSIDs(),
		LogonName: k.EffectiveName.String(),
		Domain:    k.LogonDomainName.String(),
	}
	return info, nil
}

// signatureField is where the signature of a PAC_SIGNATURE_DATA buffer
// lies in the PAC ([MS-PAC] §2.8: SignatureType, 4 bytes LE, then the
// signature, whose length the type gives), with the checksum type's
// gokrb5 implementation.
func signatureField(b []byte, buf *pac.InfoBuffer) (etype.EType, []byte, error) {
	sb := b[buf.Offset : buf.Offset+uint64(buf.CBBufferSize)]
	if len(sb) < 4 {
		return nil, nil, fmt.Errorf("%w: PAC signature buffer of %d bytes", ErrDefectiveToken, len(sb))
	}
	et, err := crypto.GetChksumEtype(int32(binary.LittleEndian.Uint32(sb)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: PAC signature of an unsupported checksum type", ErrBadIntegrity)
	}
	n := et.GetHMACBitLength() / 8
	if n <= 0 || len(sb)-4 < n {
		return nil, nil, fmt.Errorf("%w: PAC signature buffer of %d bytes", ErrDefectiveToken, len(sb))
	}
	return et, sb[4 : 4+n], nil
}

// verifyPACServerSignature checks the PAC's server signature ([MS-PAC]
// §2.8.1): the checksum, keyed with the service key (key usage 17,
// KERB_NON_KERB_CKSUM_SALT), over the whole PAC with the signatures of
// the server and KDC signature buffers zeroed; its checksum type must be
// the service key's. Only the KDC, or the service, holds that key. Errors
// wrap ErrDefectiveToken (layout) or ErrBadIntegrity.
func verifyPACServerSignature(b []byte, server, kdc *pac.InfoBuffer, serviceKey types.EncryptionKey) error {
	et, sig, err := signatureField(b, server)
	if err != nil {
		return err
	}
	if et.GetETypeID() != serviceKey.KeyType {
		return fmt.Errorf("%w: PAC server signature of another enctype than the service key", ErrBadIntegrity)
	}
	_, kdcSig, err := signatureField(b, kdc)
	if err != nil {
		return err
	}
	zeroed := bytes.Clone(b)
	clear(zeroed[server.Offset+4 : server.Offset+4+uint64(len(sig))])
	clear(zeroed[kdc.Offset+4 : kdc.Offset+4+uint64(len(kdcSig))])
	if !et.VerifyChecksum(serviceKey.KeyValue, zeroed, sig, keyusage.KERB_NON_KERB_CKSUM_SALT) {
		return fmt.Errorf("%w: PAC server signature does not verify", ErrBadIntegrity)
	}
	return nil
}

// ndrScan walks NDR data (little-endian NDR20, [C706] §14, [MS-RPCE]
// §2.2.5) without decoding it: each count is checked against the bytes
// left before anything of that size exists. The first failure sticks.
type ndrScan struct {
	b   []byte
	off int
	err error
}

func (s *ndrScan) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: PAC logon info: %s", ErrDefectiveToken, what)
	}
}

// skip advances n bytes after aligning to align.
func (s *ndrScan) skip(n, align int) {
	if s.err != nil {
		return
	}
	off := (s.off + align - 1) &^ (align - 1)
	if off > len(s.b) || n > len(s.b)-off {
		s.fail("shorter than its fields")
		return
	}
	s.off = off + n
}

func (s *ndrScan) u8() byte {
	s.skip(1, 1)
	if s.err != nil {
		return 0
	}
	return s.b[s.off-1]
}

func (s *ndrScan) u32() uint32 {
	s.skip(4, 4)
	if s.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s.b[s.off-4:])
}

// elements skips count elements of size bytes (4-aligned), refusing a
// count the bytes left cannot hold.
func (s *ndrScan) elements(count uint32, size int, what string) {
	if s.err != nil {
		return
	}
	if uint64(count) > uint64(len(s.b)-s.off)/uint64(size) {
		s.fail(what + " count beyond the buffer")
		return
	}
	s.skip(int(count)*size, 4)
}

// unicodeString is an RPC_UNICODE_STRING's deferred buffer ([MS-DTYP]
// §2.3.10): a conformant varying array of UTF-16 code units.
func (s *ndrScan) unicodeString() {
	s.u32() // maximum count: gokrb5 allocates by the actual count
	if s.u32() != 0 {
		s.fail("string with an offset")
	}
	s.elements(s.u32(), 2, "string")
}

// sid is an RPC_SID ([MS-DTYP] §2.4.2.3), a conformant structure whose
// count (of sub-authorities, at most 15) comes first.
func (s *ndrScan) sid() {
	n := s.u32()
	s.u8() // Revision
	if c := s.u8(); n > 15 || uint32(c) != n {
		s.fail("SID with a bad sub-authority count")
	}
	s.skip(6, 1) // IdentifierAuthority
	s.elements(n, 4, "SID")
}

// groups is a conformant array of GROUP_MEMBERSHIP ([MS-PAC] §2.2.2).
func (s *ndrScan) groups() { s.elements(s.u32(), 8, "group") }

// checkLogonInfoNDR walks a KERB_VALIDATION_INFO buffer ([MS-PAC] §2.5)
// as gokrb5's decoder reads it and refuses it if a count on the wire
// claims more elements than the buffer's bytes hold. gokrb5 allocates
// each array at its wire count before reading an element: a 4-byte count
// would otherwise cost up to 2³² elements. With the counts bounded, what
// gokrb5 allocates is a small multiple of the buffer's size.
func checkLogonInfoNDR(b []byte) error {
	s := &ndrScan{b: b}
	// Common and private type serialization headers ([MS-RPCE]
	// §2.2.6.1, §2.2.6.2): version 1, little-endian.
	if len(b) < 16 || b[0] != 1 || b[1] != 0x10 {
		s.fail("not a little-endian type serialization version 1")
		return s.err
	}
	s.off = 16
	if s.u32() == 0 { // referent of the top-level pointer
		s.fail("null")
	}
	// The fixed part, noting which pointers are set: 6 FILETIMEs,
	// 6 RPC_UNICODE_STRINGs, LogonCount and BadPasswordCount, UserId,
	// PrimaryGroupId, GroupCount, GroupIds, UserFlags, UserSessionKey,
	// LogonServer, LogonDomainName, LogonDomainId, Reserved1[2],
	// UserAccountControl, SubAuthStatus, 2 FILETIMEs, FailedILogonCount,
	// Reserved3, SidCount, ExtraSids, ResourceGroupDomainSid,
	// ResourceGroupCount, ResourceGroupIds.
	unicodeString := func() bool { s.skip(4, 4); return s.u32() != 0 }
	s.skip(6*8, 4)
	var names [8]bool
	for i := range 6 {
		names[i] = unicodeString()
	}
	s.skip(2+2+4+4+4, 4)
	groupIDs := s.u32() != 0
	s.skip(4+16, 4)
	names[6] = unicodeString()
	names[7] = unicodeString()
	domainID := s.u32() != 0
	s.skip(8+4+4+8+8+4+4+4, 4)
	extraSIDs := s.u32() != 0
	resourceDomain := s.u32() != 0
	s.skip(4, 4)
	resourceGroups := s.u32() != 0
	// The referents, in the order of their pointers.
	for i, set := range names {
		if set {
			s.unicodeString()
		}
		if i == 5 && groupIDs {
			s.groups()
		}
	}
	if domainID {
		s.sid()
	}
	if extraSIDs {
		n := s.u32()
		if uint64(n) > uint64(len(b)-min(s.off, len(b)))/8 {
			s.fail("extra SID count beyond the buffer")
			return s.err
		}
		var sids uint32
		for range n {
			if s.u32() != 0 {
				sids++
			}
			s.u32() // Attributes
		}
		for range sids {
			s.sid()
		}
	}
	if resourceDomain {
		s.sid()
	}
	if resourceGroups {
		s.groups()
	}
	return s.err
}
