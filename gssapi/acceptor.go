package gssapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// DefaultClockSkew is the allowed difference between the client's clock and
// ours (RFC 4120 §1.6 suggests 5 minutes).
const DefaultClockSkew = 5 * time.Minute

// AcceptorConfig configures an Acceptor.
type AcceptorConfig struct {
	// Keytab holds the service keys. Required; replace it later with
	// SetKeytab (rotation keeps old kvnos working while they are in it).
	Keytab *keytab.Keytab
	// Principals are the service principals this acceptor is, as
	// "service/host" (any realm) or "service/host@REALM". Empty: any
	// principal with a key in the keytab.
	Principals []string
	// ClockSkew is the tolerance for authenticator and ticket times
	// (default DefaultClockSkew).
	ClockSkew time.Duration
	// ReplayCache detects replayed AP-REQs. Default: a new cache with
	// DefaultReplayCacheEntries. Share one between acceptors of the same
	// service keys (e.g. across configuration reloads).
	ReplayCache *ReplayCache
	// NoAcceptorSubkey: do not assert an acceptor subkey in the AP-REP (MIT
	// acceptors always do; this exists for interop testing).
	NoAcceptorSubkey bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Acceptor verifies AP-REQs and establishes acceptor contexts. Safe for
// concurrent use.
type Acceptor struct {
	keytab     atomic.Pointer[keytab.Keytab]
	principals []Principal // Realm "" matches any realm
	skew       time.Duration
	replay     *ReplayCache
	noSubkey   bool
	now        func() time.Time
}

// NewAcceptor checks cfg and returns an Acceptor.
func NewAcceptor(cfg AcceptorConfig) (*Acceptor, error) {
	if cfg.Keytab == nil {
		return nil, errors.New("gssapi: acceptor needs a keytab")
	}
	a := &Acceptor{skew: cfg.ClockSkew, replay: cfg.ReplayCache, noSubkey: cfg.NoAcceptorSubkey, now: cfg.Now}
	if a.skew <= 0 {
		a.skew = DefaultClockSkew
	}
	if a.replay == nil {
		a.replay = NewReplayCache(0)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, s := range cfg.Principals {
		p, err := ParsePrincipal(s)
		if err != nil {
			return nil, err
		}
		a.principals = append(a.principals, p)
	}
	a.keytab.Store(cfg.Keytab)
	return a, nil
}

// ParsePrincipal parses "name/inst[@REALM]"; the realm may be empty.
func ParsePrincipal(s string) (Principal, error) {
	name, realm, _ := strings.Cut(s, "@")
	if name == "" || strings.Contains(realm, "@") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return Principal{}, fmt.Errorf("gssapi: bad principal name %q", s)
	}
	return Principal{Name: name, Realm: realm}, nil
}

// SetKeytab replaces the keytab for contexts accepted from now on.
func (a *Acceptor) SetKeytab(kt *keytab.Keytab) { a.keytab.Store(kt) }

// Keytab returns the keytab in use.
func (a *Acceptor) Keytab() *keytab.Keytab { return a.keytab.Load() }

// Accept verifies an InitialContextToken carrying an AP-REQ from peer (the
// client's address, checked against any addresses in the ticket; the zero
// Addr skips nothing: an address-bound ticket is then refused). It returns
// the established context and the AP-REP token to send back (also when
// mutual authentication was not requested; RFC 1961 peers expect a token).
//
// Everything the AP-REQ holds is untrusted until the ticket decrypts with
// our key; decoder panics are turned into ErrDefectiveToken.
func (a *Acceptor) Accept(token []byte, peer netip.Addr) (ctx *Context, apRep []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ctx, apRep, err = nil, nil, fmt.Errorf("%w: AP-REQ decoding failed: %v", ErrDefectiveToken, r)
		}
	}()
	tokID, body, err := parseInitialToken(token)
	if err != nil {
		return nil, nil, err
	}
	if tokID != tokIDAPReq {
		return nil, nil, fmt.Errorf("%w: TOK_ID %04x where an AP-REQ (0100) was expected", ErrDefectiveToken, tokID)
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		return nil, nil, fmt.Errorf("%w: AP-REQ: %v", ErrDefectiveToken, err)
	}
	if req.PVNO != 5 || len(req.Ticket.SName.NameString) == 0 {
		return nil, nil, fmt.Errorf("%w: AP-REQ pvno %d, ticket for %d-component name", ErrDefectiveToken, req.PVNO, len(req.Ticket.SName.NameString))
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionUseSessionKey) {
		return nil, nil, fmt.Errorf("%w: user-to-user AP-REQ not supported", ErrDefectiveToken)
	}
	kt := a.keytab.Load()
	service := principalOf(req.Ticket.SName, req.Ticket.Realm)
	if err := a.allowed(service, kt); err != nil {
		return nil, nil, err
	}
	key, kvno, err := kt.GetEncryptionKey(req.Ticket.SName, req.Ticket.Realm, req.Ticket.EncPart.KVNO, req.Ticket.EncPart.EType)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s kvno %d %s", ErrNoKey, service, req.Ticket.EncPart.KVNO, EnctypeName(req.Ticket.EncPart.EType))
	}
	plain, err := decrypt(req.Ticket.EncPart, key, keyusage.KDC_REP_TICKET, "ticket")
	if err != nil {
		return nil, nil, err
	}
	var etp messages.EncTicketPart
	if err := etp.Unmarshal(plain); err != nil {
		return nil, nil, fmt.Errorf("%w: ticket: %v", ErrDefectiveToken, err)
	}
	// From here on the ticket is the KDC's word.
	now := a.now()
	if err := a.checkTicket(&etp, now, peer); err != nil {
		return nil, nil, err
	}
	if err := checkAESKey(etp.Key, "session key"); err != nil {
		return nil, nil, err
	}
	authPlain, err := decrypt(req.EncryptedAuthenticator, etp.Key, keyusage.AP_REQ_AUTHENTICATOR, "authenticator")
	if err != nil {
		return nil, nil, err
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(authPlain); err != nil {
		return nil, nil, fmt.Errorf("%w: authenticator: %v", ErrDefectiveToken, err)
	}
	client := principalOf(etp.CName, etp.CRealm)
	if auth.CRealm != etp.CRealm || !auth.CName.Equal(etp.CName) {
		return nil, nil, fmt.Errorf("%w: ticket for %s, authenticator for %s", ErrClientMismatch, client, principalOf(auth.CName, auth.CRealm))
	}
	ctime := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	if d := now.Sub(ctime); d > a.skew || -d > a.skew {
		return nil, nil, fmt.Errorf("%w: authenticator time %s, ours %s (allowed %s)", ErrSkew, ctime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), a.skew)
	}
	if auth.Cksum.CksumType != gssChecksumType {
		return nil, nil, fmt.Errorf("%w: authenticator checksum type %d, want 0x8003", ErrDefectiveToken, auth.Cksum.CksumType)
	}
	cks, err := parseGSSChecksum(auth.Cksum.Checksum)
	if err != nil {
		return nil, nil, err
	}
	base := etp.Key
	if len(auth.SubKey.KeyValue) > 0 || auth.SubKey.KeyType != 0 {
		if err := checkAESKey(auth.SubKey, "initiator subkey"); err != nil {
			return nil, nil, err
		}
		base = auth.SubKey
	}
	// Record the authenticator only once it has proved itself, so garbage
	// cannot fill the cache.
	if err := a.replay.check(replayKeyOf(client, service, req.EncryptedAuthenticator.Cipher), now, ctime.Add(a.skew)); err != nil {
		return nil, nil, err
	}

	mutual := cks.flags&FlagMutual != 0 || types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired)
	recvSeq := seqFromASN1(auth.SeqNumber)
	sendSeq := recvSeq // RFC 1964 §1.2.1.2: without mutual auth the acceptor uses the initiator's number
	var keyFlag byte
	rep := encAPRepPart{CTime: auth.CTime.UTC(), Cusec: auth.Cusec}
	if mutual {
		if sendSeq, err = randomSeq(); err != nil {
			return nil, nil, err
		}
		if !a.noSubkey {
			sub, err := newKey(base.KeyType, "acceptor subkey")
			if err != nil {
				return nil, nil, err
			}
			rep.Subkey, base, keyFlag = sub, sub, tokFlagAcceptorSubkey
		}
	}
	rep.SeqNumber = int64(sendSeq)
	apRep, err = marshalAPRep(rep, etp.Key)
	if err != nil {
		return nil, nil, err
	}
	ctx, err = newContext(false, base.KeyValue, base.KeyType, "context key", sendSeq, recvSeq)
	if err != nil {
		return nil, nil, err
	}
	ctx.flags = cks.flags
	ctx.client = client
	ctx.service = service
	ctx.kvno = kvno
	ctx.expiry = etp.EndTime
	ctx.keyFlag = keyFlag
	ctx.cb = cks.hasBindings()
	ctx.ad, ctx.adErr = adInfoFromTicket(&etp, key)
	return ctx, apRep, nil
}

// allowed checks the ticket's service principal against the configured list,
// or against the keytab when there is no list.
func (a *Acceptor) allowed(service Principal, kt *keytab.Keytab) error {
	if len(a.principals) > 0 {
		for _, p := range a.principals {
			if p.Name == service.Name && (p.Realm == "" || p.Realm == service.Realm) {
				return nil
			}
		}
		return fmt.Errorf("%w: ticket is for %s", ErrPrincipalNotAllowed, service)
	}
	for _, e := range kt.Entries {
		if e.Principal.Realm == service.Realm && strings.Join(e.Principal.Components, "/") == service.Name {
			return nil
		}
	}
	return fmt.Errorf("%w: ticket is for %s, which has no key in the keytab", ErrPrincipalNotAllowed, service)
}

func (a *Acceptor) checkTicket(etp *messages.EncTicketPart, now time.Time, peer netip.Addr) error {
	start := etp.StartTime
	if start.IsZero() {
		start = etp.AuthTime
	}
	if start.Sub(now) > a.skew || types.IsFlagSet(&etp.Flags, flags.Invalid) {
		return fmt.Errorf("%w: starts %s", ErrTicketNotYetValid, start.UTC().Format(time.RFC3339))
	}
	if now.Sub(etp.EndTime) > a.skew {
		return fmt.Errorf("%w: ended %s", ErrTicketExpired, etp.EndTime.UTC().Format(time.RFC3339))
	}
	if len(etp.CAddr) > 0 {
		if !peer.IsValid() || !types.HostAddressesContains(etp.CAddr, types.HostAddressFromNetIP(net.IP(peer.Unmap().AsSlice()))) {
			return fmt.Errorf("%w: %s", ErrBadAddress, peer)
		}
	}
	return nil
}

// encAPRepPart is EncAPRepPart of RFC 4120 §5.5.2 (application tag 27).
type encAPRepPart struct {
	CTime     time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec     int                 `asn1:"explicit,tag:1"`
	Subkey    types.EncryptionKey `asn1:"optional,explicit,tag:2"`
	SeqNumber int64               `asn1:"optional,explicit,tag:3"`
}

// apRep is AP-REP of RFC 4120 §5.5.2 (application tag 15).
type apRep struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

// marshalAPRep builds the GSS AP-REP token: EncAPRepPart encrypted in the
// ticket session key (key usage 12), framed with TOK_ID 02 00.
func marshalAPRep(part encAPRepPart, sessionKey types.EncryptionKey) ([]byte, error) {
	b, err := asn1.Marshal(part)
	if err != nil {
		return nil, fmt.Errorf("gssapi: marshal EncAPRepPart: %w", err)
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncAPRepPart)
	ed, err := encrypt(b, sessionKey, keyusage.AP_REP_ENCPART, "AP-REP")
	if err != nil {
		return nil, fmt.Errorf("gssapi: encrypt EncAPRepPart: %w", err)
	}
	rb, err := asn1.Marshal(apRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, fmt.Errorf("gssapi: marshal AP-REP: %w", err)
	}
	rb = asn1tools.AddASNAppTag(rb, asnAppTag.APREP)
	return appendInitialToken(nil, tokIDAPRep, rb), nil
}
