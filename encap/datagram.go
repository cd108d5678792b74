package encap

import (
	"fmt"

	"github.com/gssocks/gssocks/gssapi"
)

// Datagram protects UDP datagrams for a SOCKS UDP association (RFC 1961
// §5): each datagram is one MTYP 3 message whose token wraps the SOCKS UDP
// header and data, under the control connection's context. The context's
// receiving side is switched to a replay window: datagrams may be lost or
// reordered, never replayed. Safe for concurrent use.
type Datagram struct {
	ctx  *gssapi.Context
	conf bool
}

// NewDatagram prepares ctx for datagrams at level (integrity or
// confidentiality).
func NewDatagram(ctx *gssapi.Context, level Level) (*Datagram, error) {
	if level != LevelIntegrity && level != LevelConfidentiality {
		return nil, fmt.Errorf("encap: cannot encapsulate datagrams at level %s", level)
	}
	ctx.SetDatagramMode()
	return &Datagram{ctx: ctx, conf: level == LevelConfidentiality}, nil
}

// MaxPayload is the largest payload Seal accepts.
func (d *Datagram) MaxPayload() int { return d.ctx.WrapSizeLimit(MaxToken, d.conf) }

// Seal appends the message carrying payload to dst.
func (d *Datagram) Seal(dst, payload []byte) ([]byte, error) {
	if len(payload) > d.MaxPayload() {
		return dst, fmt.Errorf("%w: datagram of %d bytes", ErrTooLarge, len(payload))
	}
	return appendWrapped(dst, d.ctx, payload, d.conf)
}

// Open checks a received datagram's framing and protection and returns its
// payload, which overwrites pkt (no allocation).
func (d *Datagram) Open(pkt []byte) ([]byte, error) {
	if len(pkt) < headerLen {
		return nil, fmt.Errorf("%w: datagram of %d bytes", ErrBadLength, len(pkt))
	}
	mtyp, n, err := parseHeader(pkt[:headerLen])
	if err != nil {
		return nil, err
	}
	if mtyp != MsgEncapsulated {
		return nil, fmt.Errorf("%w: %s datagram", ErrUnexpectedType, mtyp)
	}
	if n != len(pkt)-headerLen {
		return nil, fmt.Errorf("%w: length field %d, %d bytes follow", ErrBadLength, n, len(pkt)-headerLen)
	}
	tok := pkt[headerLen:]
	msg, sealed, err := d.ctx.Unwrap(tok[:0], tok)
	if err != nil {
		return nil, fmt.Errorf("encap: datagram token: %w", err)
	}
	if sealed != d.conf {
		return nil, fmt.Errorf("%w: datagram sealed=%t", ErrProtection, sealed)
	}
	return msg, nil
}
