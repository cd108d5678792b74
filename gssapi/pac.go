package gssapi

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"

	"github.com/jcmturner/gokrb5/v8/iana/adtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/types"
)

// pacLogonInfo is the PAC buffer type of KERB_VALIDATION_INFO ([MS-PAC]
// §2.4); MIT KDCs (1.20+) issue PACs without it.
const pacLogonInfo = 1

// adInfoFromTicket extracts the AD data from the ticket's PAC
// (AD-IF-RELEVANT → AD-WIN2K-PAC), verifying the server signature with the
// service key. A ticket without a PAC, or whose PAC has no logon info (MIT),
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

func decodePAC(b []byte, serviceKey types.EncryptionKey) (*ADInfo, error) {
	if err := checkPACHeader(b); err != nil {
		return nil, err
	}
	var p pac.PACType
	if err := p.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: PAC does not decode", ErrDefectiveToken)
	}
	hasLogon := false
	for _, buf := range p.Buffers {
		// Offset is a 64-bit wire value: compare without adding, which
		// could wrap around.
		if buf.Offset > uint64(len(p.Data)) || uint64(buf.CBBufferSize) > uint64(len(p.Data))-buf.Offset {
			return nil, fmt.Errorf("%w: PAC buffer type %d beyond the PAC", ErrDefectiveToken, buf.ULType)
		}
		hasLogon = hasLogon || buf.ULType == pacLogonInfo
	}
	if !hasLogon {
		return nil, nil
	}
	if err := p.ProcessPACInfoBuffers(serviceKey, log.New(io.Discard, "", 0)); err != nil {
		return nil, fmt.Errorf("%w: PAC signature or logon info does not verify", ErrBadIntegrity)
	}
	k := p.KerbValidationInfo
	info := &ADInfo{
		UserSID:   fmt.Sprintf("%s-%d", k.LogonDomainID.String(), k.UserID),
		GroupSIDs: k.GetGroupMembershipSIDs(),
		LogonName: k.EffectiveName.String(),
		Domain:    k.LogonDomainName.String(),
	}
	return info, nil
}
