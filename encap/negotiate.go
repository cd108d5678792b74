package encap

import (
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/gssocks/gssocks/gssapi"
)

// Level is a protection level of RFC 1961 §4.
type Level byte

// Protection levels. LevelClear is not in RFC 1961: after the
// subnegotiation the SOCKS request, reply and data flow unprotected
// (authentication only); Dante and curl use it.
const (
	LevelClear           Level = 0
	LevelIntegrity       Level = 1
	LevelConfidentiality Level = 2
	LevelSelective       Level = 3 // per-message choice; gssocks refuses it
)

func (l Level) String() string {
	switch l {
	case LevelClear:
		return "clear"
	case LevelIntegrity:
		return "integrity"
	case LevelConfidentiality:
		return "confidentiality"
	case LevelSelective:
		return "selective"
	}
	return fmt.Sprintf("level(%d)", byte(l))
}

// ParseLevel parses the names String returns.
func ParseLevel(s string) (Level, error) {
	for l := LevelClear; l <= LevelSelective; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("encap: unknown protection level %q (want clear, integrity or confidentiality)", s)
}

// ErrLevelRefused is returned when no level acceptable to both sides exists.
var ErrLevelRefused = errors.New("encap: protection level refused")

// AcceptContext runs the server side of RFC 1961 §3: it reads the client's
// initial token, has acc verify it, and answers with the AP-REP. The
// Kerberos mechanism needs one round trip. On failure it sends the abort
// message before returning the error, for the caller to close.
func AcceptContext(rw io.ReadWriter, acc *gssapi.Acceptor, peer netip.Addr) (*gssapi.Context, error) {
	tok, err := expect(rw, MsgAuth)
	if err != nil {
		return nil, abortUnlessGone(rw, err)
	}
	ctx, rep, err := acc.Accept(tok, peer)
	if err != nil {
		WriteAbort(rw)
		return nil, err
	}
	if err := WriteMessage(rw, MsgAuth, rep); err != nil {
		return nil, err
	}
	return ctx, nil
}

// abortUnlessGone sends the abort message (RFC 1961 §3) for a failure err
// to read the client's message, unless the client aborted first or its
// stream ended, and returns err.
func abortUnlessGone(w io.Writer, err error) error {
	if !errors.Is(err, ErrAborted) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		WriteAbort(w)
	}
	return err
}

// InitiateContext runs the client side of RFC 1961 §3 with a prepared
// initiator and its initial token.
func InitiateContext(rw io.ReadWriter, in *gssapi.Initiator, initial []byte) (*gssapi.Context, error) {
	if err := WriteMessage(rw, MsgAuth, initial); err != nil {
		return nil, err
	}
	rep, err := expect(rw, MsgAuth)
	if err != nil {
		return nil, err
	}
	return in.Complete(rep)
}

// LevelChooser decides the level a server answers to a client's request;
// nec says the client used the unwrapped form. An error refuses the
// session: NegotiateServer sends the abort message and the caller closes.
type LevelChooser func(requested Level, nec bool) (Level, error)

// Negotiation is the outcome of a server-side subnegotiation.
type Negotiation struct {
	Requested Level
	Granted   Level
	NEC       bool // the unwrapped form was used
}

// NegotiateServer reads the client's protection-level message and answers
// with the level choose picks, in the same form the client used: wrapped
// with gss_wrap without confidentiality (RFC 1961 §4), or a raw byte (the
// NEC form, recognised by its one-byte token). When it answers no level (a
// malformed or unverifiable message, a GSS-API failure, or choose
// refusing) it sends the abort message (§3) before returning the error,
// for the caller to close.
func NegotiateServer(rw io.ReadWriter, ctx *gssapi.Context, choose LevelChooser) (Negotiation, error) {
	tok, err := expect(rw, MsgProtection)
	if err != nil {
		return Negotiation{}, abortUnlessGone(rw, err)
	}
	n, answer, err := decideLevel(tok, ctx, choose)
	if err != nil {
		WriteAbort(rw)
		return n, err
	}
	return n, WriteMessage(rw, MsgProtection, answer)
}

// decideLevel reads the level a client's protection-level token asks,
// has choose decide, and returns the answer token.
func decideLevel(tok []byte, ctx *gssapi.Context, choose LevelChooser) (n Negotiation, answer []byte, err error) {
	var lvl []byte
	if len(tok) == 1 {
		n.NEC, lvl = true, tok
	} else {
		var sealed bool
		lvl, sealed, err = ctx.Unwrap(nil, tok)
		if err != nil {
			return n, nil, fmt.Errorf("encap: protection-level token: %w", err)
		}
		if sealed || len(lvl) != 1 {
			return n, nil, fmt.Errorf("%w: protection-level token holds %d bytes (sealed %t)", ErrLevelRefused, len(lvl), sealed)
		}
	}
	n.Requested = Level(lvl[0])
	if n.Granted, err = choose(n.Requested, n.NEC); err != nil {
		return n, nil, err
	}
	answer = []byte{byte(n.Granted)}
	if !n.NEC {
		if answer, err = ctx.Wrap(nil, answer, false); err != nil {
			return n, nil, err
		}
	}
	return n, answer, nil
}

// NegotiateClient asks for a level in the wrapped form (or the NEC form)
// and returns the level the server granted. The caller decides whether it
// can live with a different one.
func NegotiateClient(rw io.ReadWriter, ctx *gssapi.Context, want Level, nec bool) (Level, error) {
	tok := []byte{byte(want)}
	var err error
	if !nec {
		if tok, err = ctx.Wrap(nil, tok, false); err != nil {
			return 0, err
		}
	}
	if err := WriteMessage(rw, MsgProtection, tok); err != nil {
		return 0, err
	}
	tok, err = expect(rw, MsgProtection)
	if err != nil {
		return 0, err
	}
	if nec {
		if len(tok) != 1 {
			return 0, fmt.Errorf("%w: server answered the NEC form with %d bytes", ErrLevelRefused, len(tok))
		}
		return Level(tok[0]), nil
	}
	lvl, _, err := ctx.Unwrap(nil, tok)
	if err != nil {
		return 0, fmt.Errorf("encap: protection-level answer: %w", err)
	}
	if len(lvl) != 1 {
		return 0, fmt.Errorf("%w: protection-level answer of %d bytes", ErrLevelRefused, len(lvl))
	}
	return Level(lvl[0]), nil
}
