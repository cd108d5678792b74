package gssapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

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
	// Keytab holds the service keys (load it with LoadKeytab). Required;
	// replace it later with SetKeytab (rotation keeps old kvnos working
	// while they are in it).
	Keytab *keytab.Keytab
	// Principals are the service principals this acceptor is, as
	// "service/host" (any realm) or "service/host@REALM" (ParsePrincipal).
	// Empty: any principal with a key in the keytab.
	Principals []string
	// ClockSkew is the tolerance for authenticator and ticket times
	// (default DefaultClockSkew).
	ClockSkew time.Duration
	// ReplayCache detects replayed AP-REQs: a local *ReplayCache, or a
	// store shared by several gateway nodes (package replay). Default
	// (nil): a new local cache with DefaultReplayCacheEntries. Share one
	// between acceptors of the same service keys (e.g. across
	// configuration reloads).
	ReplayCache ReplayStore
	// NoAcceptorSubkey: do not assert an acceptor subkey in the AP-REP (MIT
	// acceptors always do; this exists for interop testing).
	NoAcceptorSubkey bool
	// Now is the clock (default time.Now).
	Now func() time.Time

	// TrustedRealms are the realms, besides the service's own, whose
	// clients are accepted and through which tickets may have come
	// (cross-realm, RFC 4120 §1.2). The service's realm is the realm of
	// the keytab entry whose key opened the ticket. Empty: only clients of
	// the service's realm; a ticket of another realm, or one that
	// transited another realm, is refused with ErrRealmNotTrusted even
	// though the service realm's KDC issued it. Names compare exactly;
	// no wildcards.
	TrustedRealms []string
	// AllowAnonymous accepts anonymous tickets (RFC 6112), refused by
	// default with ErrAnonymous. Their contexts report ClientAnonymous.
	AllowAnonymous bool
	// AllowServiceClients accepts tickets whose client is a service
	// principal (ClientService: host/ws1.example.test, HTTP/web), refused
	// by default with ErrNotAUser. krbtgt clients are refused always.
	AllowServiceClients bool
}

// Acceptor verifies AP-REQs and establishes acceptor contexts. Safe for
// concurrent use.
type Acceptor struct {
	keys       atomic.Pointer[keyIndex]
	principals []Principal // Realm "" matches any realm
	skew       time.Duration
	replay     ReplayStore
	noSubkey   bool
	now        func() time.Time
	clients    clientPolicy
}

// NewAcceptor checks cfg and returns an Acceptor. A missing keytab is
// ErrBadKeytab, a principal or trusted realm that does not parse
// ErrBadName.
func NewAcceptor(cfg AcceptorConfig) (*Acceptor, error) {
	if cfg.Keytab == nil {
		return nil, &KeytabError{Reason: "the acceptor needs a keytab"}
	}
	clients, err := newClientPolicy(cfg)
	if err != nil {
		return nil, err
	}
	a := &Acceptor{skew: cfg.ClockSkew, replay: cfg.ReplayCache, noSubkey: cfg.NoAcceptorSubkey, now: cfg.Now, clients: clients}
	if a.skew <= 0 {
		a.skew = DefaultClockSkew
	}
	if rc, ok := a.replay.(*ReplayCache); a.replay == nil || ok && rc == nil {
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
	a.SetKeytab(cfg.Keytab)
	return a, nil
}

// SetKeytab replaces the keytab for contexts accepted from now on. The
// acceptor indexes it here; later changes to kt are not seen.
func (a *Acceptor) SetKeytab(kt *keytab.Keytab) { a.keys.Store(newKeyIndex(kt, a.principals)) }

// Keytab returns the keytab in use.
func (a *Acceptor) Keytab() *keytab.Keytab { return a.keys.Load().kt }

// Accepts reports whether service is one of the principals the acceptor
// is configured to be (MatchPrincipal over AcceptorConfig.Principals; with
// none configured, every principal is). Tickets are only opened with keys
// of such principals.
func (a *Acceptor) Accepts(service Principal) bool { return MatchPrincipal(a.principals, service) }

// KeytabFacts is KeytabFacts for the keytab in use and the configured
// principals.
func (a *Acceptor) KeytabFacts() ([]KeytabEntryFact, error) {
	return KeytabFacts(a.Keytab(), a.principals)
}

// Accept verifies an InitialContextToken carrying an AP-REQ from peer (the
// client's address, checked against any addresses in the ticket; the zero
// Addr skips nothing: an address-bound ticket is then refused). It returns
// the established context and the AP-REP token to send back (also when
// mutual authentication was not requested; RFC 1961 peers expect a token).
//
// The token may also be a SPNEGO NegTokenInit (RFC 4178) whose first
// mechanism is Kerberos and which carries the Kerberos token: the answer
// is then a NegTokenResp (see spnego.go), the context the Kerberos one,
// reporting SPNEGO. Other SPNEGO offers are refused with ErrNoKrb5Mech.
//
// This is the trust boundary. Accept runs the steps of RFC 4120 §3.2.3 and
// RFC 4121 §4.1 in order, each on what the previous ones established:
// decodeAPReq (SPNEGO, framing and AP-REQ, all untrusted), openTicket (the
// service key decrypts the ticket: from here the ticket is the KDC's word;
// then its times, addresses, and whether its client is one the acceptor
// accepts: ErrRealmNotTrusted, ErrAnonymous, ErrNotAUser, see clients.go),
// verifyAuthenticator (the session key decrypts the authenticator, which
// must match the ticket and be fresh), recordAuthenticator (the replay
// cache) and finish (AP-REP and context, in SPNEGO if the client used
// it). Each returns errors wrapping this package's sentinels; decoder
// panics become ErrDefectiveToken here.
func (a *Acceptor) Accept(token []byte, peer netip.Addr) (ctx *Context, apRep []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ctx, apRep, err = nil, nil, fmt.Errorf("%w: AP-REQ decoding failed (%s)", ErrDefectiveToken, panicText(r))
		}
	}()
	s := acceptState{a: a, keys: a.keys.Load(), now: a.now(), peer: peer}
	for _, step := range []func() error{
		func() error { return s.decodeAPReq(token) },
		s.openTicket,
		s.verifyAuthenticator,
		s.recordAuthenticator,
	} {
		if err := step(); err != nil {
			return nil, nil, err
		}
	}
	return s.finish()
}

// panicText describes a recovered decoder panic without its value, which
// could quote the input; runtime errors (index out of range) carry only
// numbers.
func panicText(r any) string {
	if re, ok := r.(runtime.Error); ok {
		return re.Error()
	}
	return "decoder panic"
}

// acceptState is one AP-REQ on its way through Accept, discarded
// afterwards.
type acceptState struct {
	a    *Acceptor
	keys *keyIndex
	now  time.Time
	peer netip.Addr

	// decodeAPReq
	req        messages.APReq
	spnego     *negTokenInit // the SPNEGO wrapping, nil without
	spnegoMech []byte        // the mechanism OID to answer as supportedMech
	// openTicket
	ticket     messages.EncTicketPart
	serviceKey types.EncryptionKey
	service    Principal // the keytab entry's principal whose key opened the ticket
	kvno       int
	client     Principal
	kind       ClientKind
	trust      RealmTrust
	// verifyAuthenticator
	auth  types.Authenticator
	ctime time.Time
	cks   gssChecksum
	base  types.EncryptionKey // initiator subkey, or the session key
}

// decodeAPReq parses the RFC 2743 framing and the AP-REQ (RFC 4120
// §5.5.1). Nothing in it is trusted yet.
func (s *acceptState) decodeAPReq(token []byte) error {
	if isSPNEGO(token) {
		n, err := parseNegTokenInit(token)
		if err != nil {
			return err
		}
		if s.spnegoMech, token, err = n.krb5Token(); err != nil {
			return err
		}
		s.spnego = &n
	}
	tokID, body, err := parseInitialToken(token)
	if err != nil {
		return err
	}
	if tokID != tokIDAPReq {
		return fmt.Errorf("%w: TOK_ID %04x where an AP-REQ (0100) was expected", ErrDefectiveToken, tokID)
	}
	if err := s.req.Unmarshal(body); err != nil {
		return fmt.Errorf("%w: not a valid AP-REQ", ErrDefectiveToken)
	}
	if s.req.PVNO != 5 || len(s.req.Ticket.SName.NameString) == 0 {
		return fmt.Errorf("%w: AP-REQ pvno %d, ticket for %d-component name", ErrDefectiveToken, s.req.PVNO, len(s.req.Ticket.SName.NameString))
	}
	if types.IsFlagSet(&s.req.APOptions, flags.APOptionUseSessionKey) {
		return fmt.Errorf("%w: user-to-user AP-REQ not supported", ErrDefectiveToken)
	}
	return nil
}

// openTicket finds the service key as MIT's acceptor does (keyIndex.lookup:
// the entry for the ticket's principal and kvno, then the other keys of
// the configured principals), decrypts the ticket (RFC 4120 §5.3) and
// checks its times and addresses.
func (s *acceptState) openTicket() error {
	t := &s.req.Ticket
	sname := principalOf(t.SName, t.Realm)
	kvno := uint32(t.EncPart.KVNO)
	if !opensTickets(t.EncPart.EType) {
		return &UnsupportedEnctypeError{Enctype: t.EncPart.EType, Role: "ticket"}
	}
	look := s.keys.lookup(sname, kvno, t.EncPart.EType)
	var plain []byte
	found := -1
	for _, i := range look.tries {
		e := &s.keys.entries[i]
		p, err := decrypt(t.EncPart, e.key, keyusage.KDC_REP_TICKET, "ticket")
		if err == nil {
			plain, found = p, i
			break
		}
		if !errors.Is(err, ErrBadIntegrity) {
			return err // the same for every key: malformed, or an enctype we lack
		}
	}
	if found < 0 {
		return lookupError(look, sname, kvno, t.EncPart.EType)
	}
	e := &s.keys.entries[found]
	if err := s.ticket.Unmarshal(plain); err != nil {
		return fmt.Errorf("%w: decrypted ticket is not a valid EncTicketPart", ErrDefectiveToken)
	}
	// From here on the ticket is the KDC's word. The service is the
	// principal whose key opened it: the sname beside the ciphertext is
	// not protected.
	s.serviceKey, s.service = e.key, e.principal
	s.kvno = int(e.kvno)
	if kvno != 0 && kvnoMatch(e.kvno, kvno) < 3 && kvnoMatch(e.kvno, kvno) > 0 {
		s.kvno = int(kvno) // the entry holds no kvno, or only its low 8 bits
	}
	s.client = principalOf(s.ticket.CName, s.ticket.CRealm)
	if err := s.checkTicket(); err != nil {
		return err
	}
	return s.checkClient()
}

// lookupError says why no key opened the ticket.
func lookupError(look keyLookup, sname Principal, kvno uint32, enctype int32) error {
	switch {
	case look.named && !look.namedAllowed:
		return fmt.Errorf("%w: ticket names %s, not a configured principal", ErrPrincipalNotAllowed, quote(sname.String()))
	case look.exact:
		return fmt.Errorf("%w: ticket for %s kvno %d does not decrypt with the keytab's %s key, nor with another", ErrBadIntegrity, quote(sname.String()), kvno, EnctypeName(enctype))
	case look.namedAllowed:
		return fmt.Errorf("%w: %s kvno %d %s not in the keytab, and no other key opens the ticket", ErrNoKey, quote(sname.String()), kvno, EnctypeName(enctype))
	case len(look.tries) == 0:
		return fmt.Errorf("%w: ticket names %s, which has no key in the keytab, and no configured principal has a %s key", ErrPrincipalNotAllowed, quote(sname.String()), EnctypeName(enctype))
	}
	return fmt.Errorf("%w: ticket names %s, which has no key in the keytab, and no other key opens it", ErrPrincipalNotAllowed, quote(sname.String()))
}

func (s *acceptState) checkTicket() error {
	etp := &s.ticket
	start := etp.StartTime
	if start.IsZero() {
		start = etp.AuthTime
	}
	if start.Sub(s.now) > s.a.skew || types.IsFlagSet(&etp.Flags, flags.Invalid) {
		return fmt.Errorf("%w: starts %s", ErrTicketNotYetValid, start.UTC().Format(time.RFC3339))
	}
	if s.now.Sub(etp.EndTime) > s.a.skew {
		return fmt.Errorf("%w: ended %s", ErrTicketExpired, etp.EndTime.UTC().Format(time.RFC3339))
	}
	if len(etp.CAddr) > 0 {
		if !s.peer.IsValid() || !types.HostAddressesContains(etp.CAddr, types.HostAddressFromNetIP(net.IP(s.peer.Unmap().AsSlice()))) {
			return fmt.Errorf("%w: %s", ErrBadAddress, s.peer)
		}
	}
	return checkAESKey(etp.Key, "session key")
}

// verifyAuthenticator decrypts the authenticator with the ticket's session
// key (RFC 4120 §5.5.1) and checks it: same client as the ticket, time
// within the skew, the RFC 4121 §4.1.1 checksum, an AES subkey if any.
func (s *acceptState) verifyAuthenticator() error {
	authPlain, err := decrypt(s.req.EncryptedAuthenticator, s.ticket.Key, keyusage.AP_REQ_AUTHENTICATOR, "authenticator")
	if err != nil {
		return err
	}
	if err := s.auth.Unmarshal(authPlain); err != nil {
		return fmt.Errorf("%w: decrypted authenticator is not a valid Authenticator", ErrDefectiveToken)
	}
	auth := &s.auth
	if auth.CRealm != s.ticket.CRealm || !auth.CName.Equal(s.ticket.CName) {
		return fmt.Errorf("%w: ticket for %s, authenticator for %s", ErrClientMismatch, quote(s.client.String()), quote(principalOf(auth.CName, auth.CRealm).String()))
	}
	s.ctime = auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	if d := s.now.Sub(s.ctime); d > s.a.skew || -d > s.a.skew {
		return fmt.Errorf("%w: authenticator time %s, ours %s (allowed %s)", ErrSkew, s.ctime.UTC().Format(time.RFC3339), s.now.UTC().Format(time.RFC3339), s.a.skew)
	}
	if auth.Cksum.CksumType != gssChecksumType {
		return fmt.Errorf("%w: authenticator checksum type %d, want 0x8003", ErrDefectiveToken, auth.Cksum.CksumType)
	}
	if s.cks, err = parseGSSChecksum(auth.Cksum.Checksum); err != nil {
		return err
	}
	s.base = s.ticket.Key
	if len(auth.SubKey.KeyValue) > 0 || auth.SubKey.KeyType != 0 {
		if err := checkAESKey(auth.SubKey, "initiator subkey"); err != nil {
			return err
		}
		s.base = auth.SubKey
	}
	return nil
}

// recordAuthenticator enters the authenticator in the replay store. It runs
// last, once the authenticator has proved itself, so garbage cannot fill
// the store; the key rests only on authenticated bytes (see replayKeyOf).
// Entries live twice the skew: the longest an authenticator that passed
// the skew check can stay acceptable. The store bounds its own wait (a
// shared one has a short timeout), so no context is threaded through
// Accept. An error of a store that wraps none of the replay sentinels
// (a defective store) still refuses, as ErrReplayStoreUnavailable.
func (s *acceptState) recordAuthenticator() error {
	err := s.a.replay.Check(context.Background(), replayKeyOf(s.client, s.req.EncryptedAuthenticator.Cipher), s.client.String(), s.now, 2*s.a.skew)
	if err == nil || errors.Is(err, ErrReplay) || errors.Is(err, ErrReplayCacheFull) ||
		errors.Is(err, ErrReplayQuota) || errors.Is(err, ErrReplayStoreUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrReplayStoreUnavailable, err)
}

// reply builds the AP-REP (RFC 4120 §5.5.2, with an acceptor subkey and
// sequence number when mutual authentication was asked for) and the
// context.
func (s *acceptState) reply() (*Context, []byte, error) {
	mutual := s.mutual()
	recvSeq := seqFromASN1(s.auth.SeqNumber)
	sendSeq := recvSeq // RFC 1964 §1.2.1.2: without mutual auth the acceptor uses the initiator's number
	base := s.base
	var keyFlag byte
	rep := encAPRepPart{CTime: s.auth.CTime.UTC(), Cusec: s.auth.Cusec}
	if mutual {
		var err error
		if sendSeq, err = randomSeq(); err != nil {
			return nil, nil, err
		}
		if !s.a.noSubkey {
			sub, err := newKey(base.KeyType, "acceptor subkey")
			if err != nil {
				return nil, nil, err
			}
			rep.Subkey, base, keyFlag = sub, sub, tokFlagAcceptorSubkey
		}
	}
	rep.SeqNumber = int64(sendSeq)
	apRep, err := marshalAPRep(rep, s.ticket.Key)
	if err != nil {
		return nil, nil, err
	}
	ctx, err := newContext(false, base.KeyValue, base.KeyType, "context key", sendSeq, recvSeq)
	if err != nil {
		return nil, nil, err
	}
	ctx.flags = s.cks.flags
	ctx.client = s.client
	ctx.service = s.service
	ctx.kvno = s.kvno
	ctx.expiry = s.ticket.EndTime
	ctx.keyFlag = keyFlag
	ctx.cb = s.cks.hasBindings()
	ctx.kind, ctx.trust = s.kind, s.trust
	ctx.ad, ctx.adErr = adInfoFromTicket(&s.ticket, s.serviceKey)
	return ctx, apRep, nil
}

// mutual reports whether the client asked for mutual authentication, in
// the GSS flags or the AP options.
func (s *acceptState) mutual() bool {
	return s.cks.flags&FlagMutual != 0 || types.IsFlagSet(&s.req.APOptions, flags.APOptionMutualRequired)
}

// encAPRepPart is EncAPRepPart of RFC 4120 §5.5.2 (application tag 27).
// The asn1 tags document the encoding appendEncAPRepPart writes (and let
// the tests hold it to the reflective encoder's).
type encAPRepPart struct {
	CTime     time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec     int                 `asn1:"explicit,tag:1"`
	Subkey    types.EncryptionKey `asn1:"optional,explicit,tag:2"`
	SeqNumber int64               `asn1:"optional,explicit,tag:3"`
}

// marshalAPRep builds the GSS AP-REP token: EncAPRepPart encrypted in the
// ticket session key (key usage 12), framed with TOK_ID 02 00.
func marshalAPRep(part encAPRepPart, sessionKey types.EncryptionKey) ([]byte, error) {
	b, err := appendEncAPRepPart(make([]byte, 0, 128), &part)
	if err != nil {
		return nil, err
	}
	ed, err := encrypt(b, sessionKey, keyusage.AP_REP_ENCPART, "AP-REP")
	if err != nil {
		return nil, err
	}
	rb := appendAPRep(make([]byte, 0, len(ed.Cipher)+32), ed)
	return appendInitialToken(make([]byte, 0, len(rb)+len(krb5OID)+8), tokIDAPRep, rb), nil
}

// The AP-REP and its EncAPRepPart are encoded here, in DER (RFC 4120
// §5.5.2, §5.2.9, §5.2.3), not with the reflective asn1.Marshal: for these
// two small fixed structures it cost a quarter of Accept. Optional fields
// are left out when zero, as asn1.Marshal does; TestAPRepEncoding holds
// the output to its.

// DER tags used below.
const (
	derInteger         = 0x02
	derOctetString     = 0x04
	derSequence        = 0x30
	derGeneralizedTime = 0x18
	derContext         = 0xa0 // constructed, context-specific: [n] EXPLICIT is derContext|n
	derApplication     = 0x60 // constructed, application: [APPLICATION n] is derApplication|n
)

// appendEncAPRepPart appends [APPLICATION 27] EncAPRepPart. It fails only
// for a ctime outside years 0-9999, which GeneralizedTime cannot carry.
func appendEncAPRepPart(dst []byte, p *encAPRepPart) ([]byte, error) {
	t := p.CTime.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: AP-REP ctime year %d", ErrFailure, y)
	}
	return appendDER(dst, derApplication|asnAppTag.EncAPRepPart, func(b []byte) []byte {
		return appendDER(b, derSequence, func(b []byte) []byte {
			b = appendDER(b, derContext|0, func(b []byte) []byte {
				return appendDER(b, derGeneralizedTime, func(b []byte) []byte {
					return append(t.AppendFormat(b, "20060102150405"), 'Z')
				})
			})
			b = appendExplicitInt(b, 1, int64(p.Cusec))
			if k := p.Subkey; k.KeyType != 0 || k.KeyValue != nil {
				b = appendDER(b, derContext|2, func(b []byte) []byte {
					return appendDER(b, derSequence, func(b []byte) []byte {
						b = appendExplicitInt(b, 0, int64(k.KeyType))
						return appendExplicitOctets(b, 1, k.KeyValue)
					})
				})
			}
			if p.SeqNumber != 0 {
				b = appendExplicitInt(b, 3, p.SeqNumber)
			}
			return b
		})
	}), nil
}

// appendAPRep appends [APPLICATION 15] AP-REP carrying ed.
func appendAPRep(dst []byte, ed types.EncryptedData) []byte {
	return appendDER(dst, derApplication|asnAppTag.APREP, func(b []byte) []byte {
		return appendDER(b, derSequence, func(b []byte) []byte {
			b = appendExplicitInt(b, 0, 5)
			b = appendExplicitInt(b, 1, msgtype.KRB_AP_REP)
			return appendDER(b, derContext|2, func(b []byte) []byte {
				return appendDER(b, derSequence, func(b []byte) []byte {
					b = appendExplicitInt(b, 0, int64(ed.EType))
					if ed.KVNO != 0 {
						b = appendExplicitInt(b, 1, int64(ed.KVNO))
					}
					return appendExplicitOctets(b, 2, ed.Cipher)
				})
			})
		})
	})
}

// appendDER appends one DER element: tag, definite length, and the
// contents body appends. The length is first given one byte; a longer one
// moves the contents up.
func appendDER(dst []byte, tag byte, body func([]byte) []byte) []byte {
	dst = append(dst, tag, 0)
	start := len(dst)
	dst = body(dst)
	n := len(dst) - start
	if n < 0x80 {
		dst[start-1] = byte(n)
		return dst
	}
	var l [4]byte
	length := appendDERLength(l[:0], n)
	extra := len(length) - 1
	dst = append(dst, length[:extra]...)
	copy(dst[start+extra:], dst[start:start+n])
	copy(dst[start-1:], length)
	return dst
}

// appendExplicitInt appends [tag] EXPLICIT INTEGER v, in the fewest
// two's-complement bytes.
func appendExplicitInt(dst []byte, tag byte, v int64) []byte {
	n := 1
	for i := v; i > 127 || i < -128; i >>= 8 {
		n++
	}
	dst = append(dst, derContext|tag, byte(n+2), derInteger, byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// appendExplicitOctets appends [tag] EXPLICIT OCTET STRING b.
func appendExplicitOctets(dst []byte, tag byte, b []byte) []byte {
	return appendDER(dst, derContext|tag, func(dst []byte) []byte {
		return append(appendDERLength(append(dst, derOctetString), len(b)), b...)
	})
}
