package gssapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// DefaultInitiatorFlags are the flags an initiator asks for unless told
// otherwise.
const DefaultInitiatorFlags = FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg

// InitiatorConfig is what an initiator needs: a service ticket and its
// session key (from gokrb5's client.GetServiceTicket or a ccache) and the
// client principal they belong to.
type InitiatorConfig struct {
	Client     Principal
	Ticket     messages.Ticket
	SessionKey types.EncryptionKey
	// Flags to request (default DefaultInitiatorFlags). Without FlagMutual
	// the context is ready at once and Complete takes no token.
	Flags Flags
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Initiator is an initiator context being established.
type Initiator struct {
	cfg    InitiatorConfig
	subkey types.EncryptionKey
	seq    uint64
	ctime  time.Time
	cusec  int
	done   bool
}

// NewInitiator builds the AP-REQ with our own authenticator (a fresh
// subkey of the session key's enctype, a random sequence number and the
// 0x8003 checksum carrying the flags) and returns the InitialContextToken to
// send.
func NewInitiator(cfg InitiatorConfig) (*Initiator, []byte, error) {
	if cfg.Flags == 0 {
		cfg.Flags = DefaultInitiatorFlags
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkAESKey(cfg.SessionKey, "session key"); err != nil {
		return nil, nil, err
	}
	subkey, err := newKey(cfg.SessionKey.KeyType, "initiator subkey")
	if err != nil {
		return nil, nil, err
	}
	seq, err := randomSeq()
	if err != nil {
		return nil, nil, err
	}
	now := cfg.Now().UTC()
	in := &Initiator{cfg: cfg, subkey: subkey, seq: seq, ctime: now.Truncate(time.Second), cusec: now.Nanosecond() / 1000}
	auth := types.Authenticator{
		AVNO:      iana.PVNO,
		CRealm:    cfg.Client.Realm,
		CName:     types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(cfg.Client.Name, "/")},
		Cksum:     types.Checksum{CksumType: gssChecksumType, Checksum: appendGSSChecksum(nil, cfg.Flags)},
		Cusec:     in.cusec,
		CTime:     in.ctime,
		SubKey:    subkey,
		SeqNumber: int64(seq),
	}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: marshal authenticator: %w", ErrFailure, err)
	}
	ed, err := encrypt(ab, cfg.SessionKey, keyusage.AP_REQ_AUTHENTICATOR, "authenticator")
	if err != nil {
		return nil, nil, err
	}
	req := messages.APReq{
		PVNO:                   iana.PVNO,
		MsgType:                msgtype.KRB_AP_REQ,
		APOptions:              types.NewKrbFlags(),
		Ticket:                 cfg.Ticket,
		EncryptedAuthenticator: ed,
	}
	if cfg.Flags&FlagMutual != 0 {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	rb, err := req.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: marshal AP-REQ: %w", ErrFailure, err)
	}
	return in, appendInitialToken(nil, tokIDAPReq, rb), nil
}

// Complete processes the acceptor's AP-REP (nil when mutual authentication
// was not requested) and returns the established context.
func (in *Initiator) Complete(token []byte) (ctx *Context, err error) {
	if in.done {
		return nil, fmt.Errorf("%w: initiator already complete", ErrFailure)
	}
	defer func() {
		if r := recover(); r != nil {
			ctx, err = nil, fmt.Errorf("%w: AP-REP decoding failed (%s)", ErrDefectiveToken, panicText(r))
		}
	}()
	base, keyFlag, recvSeq := in.subkey, byte(0), in.seq
	if in.cfg.Flags&FlagMutual != 0 {
		rep, err := in.verifyAPRep(token)
		if err != nil {
			return nil, err
		}
		recvSeq = seqFromASN1(rep.SequenceNumber)
		if len(rep.Subkey.KeyValue) > 0 || rep.Subkey.KeyType != 0 {
			if err := checkAESKey(rep.Subkey, "acceptor subkey"); err != nil {
				return nil, err
			}
			base, keyFlag = rep.Subkey, tokFlagAcceptorSubkey
		}
	} else if len(token) > 0 {
		return nil, fmt.Errorf("%w: token received without mutual authentication", ErrDefectiveToken)
	}
	ctx, err = newContext(true, base.KeyValue, base.KeyType, "context key", in.seq, recvSeq)
	if err != nil {
		return nil, err
	}
	in.done = true
	ctx.flags = in.cfg.Flags
	ctx.client = in.cfg.Client
	ctx.service = principalOf(in.cfg.Ticket.SName, in.cfg.Ticket.Realm)
	ctx.keyFlag = keyFlag
	ctx.kvno = in.cfg.Ticket.EncPart.KVNO
	return ctx, nil
}

func (in *Initiator) verifyAPRep(token []byte) (*messages.EncAPRepPart, error) {
	tokID, body, err := parseInitialToken(token)
	if err != nil {
		return nil, err
	}
	switch tokID {
	case tokIDAPRep:
	case tokIDKRBError:
		var ke messages.KRBError
		if err := ke.Unmarshal(body); err != nil {
			return nil, fmt.Errorf("%w: not a valid KRB-ERROR", ErrDefectiveToken)
		}
		return nil, &KRBError{Code: ke.ErrorCode, Text: ke.EText}
	default:
		return nil, fmt.Errorf("%w: TOK_ID %04x where an AP-REP (0200) was expected", ErrDefectiveToken, tokID)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: not a valid AP-REP", ErrDefectiveToken)
	}
	return in.verifyAPRepPart(rep)
}

func (in *Initiator) verifyAPRepPart(rep messages.APRep) (*messages.EncAPRepPart, error) {
	plain, err := decrypt(rep.EncPart, in.cfg.SessionKey, keyusage.AP_REP_ENCPART, "AP-REP")
	if err != nil {
		return nil, err
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return nil, fmt.Errorf("%w: decrypted AP-REP is not a valid EncAPRepPart", ErrDefectiveToken)
	}
	if !part.CTime.Equal(in.ctime) || part.Cusec != in.cusec {
		return nil, fmt.Errorf("%w: AP-REP time does not echo our authenticator", ErrBadIntegrity)
	}
	return &part, nil
}
