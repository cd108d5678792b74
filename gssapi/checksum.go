package gssapi

import (
	"encoding/binary"
	"fmt"
)

// gssChecksumType is the authenticator checksum type of RFC 4121 §4.1.1.
const gssChecksumType = 0x8003

// gssChecksum is the decoded 0x8003 authenticator checksum.
type gssChecksum struct {
	bindings [16]byte // MD5 of the channel bindings, or zeros
	flags    Flags
}

// parseGSSChecksum decodes RFC 4121 §4.1.1: Lgth(4, LE)=16, Bnd(16),
// Flags(4, LE), then DlgOpt/Dlgth/Deleg when FlagDeleg is set, then
// extensions we ignore.
func parseGSSChecksum(b []byte) (gssChecksum, error) {
	var c gssChecksum
	if len(b) < 24 {
		return c, fmt.Errorf("%w: 0x8003 checksum of %d bytes", ErrDefectiveToken, len(b))
	}
	if n := binary.LittleEndian.Uint32(b); n != 16 {
		return c, fmt.Errorf("%w: 0x8003 checksum binding length %d", ErrDefectiveToken, n)
	}
	copy(c.bindings[:], b[4:20])
	c.flags = Flags(binary.LittleEndian.Uint32(b[20:24]))
	if c.flags&FlagDeleg != 0 {
		// A delegated TGT follows; we do not use it, but it must be well
		// formed: DlgOpt(2)=1, Dlgth(2), KRB-CRED.
		if len(b) < 28 {
			return c, fmt.Errorf("%w: 0x8003 checksum DELEG without KRB-CRED", ErrDefectiveToken)
		}
		if n := int(binary.LittleEndian.Uint16(b[26:])); len(b) < 28+n {
			return c, fmt.Errorf("%w: 0x8003 checksum KRB-CRED length %d beyond %d bytes", ErrDefectiveToken, n, len(b))
		}
		// We never forward credentials; say so in the flags we report.
		c.flags &^= FlagDeleg
	}
	return c, nil
}

func (c gssChecksum) hasBindings() bool { return c.bindings != [16]byte{} }

// appendGSSChecksum encodes the checksum without delegation.
func appendGSSChecksum(dst []byte, flags Flags) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 16)
	dst = append(dst, make([]byte, 16)...)
	return binary.LittleEndian.AppendUint32(dst, uint32(flags&^FlagDeleg))
}
