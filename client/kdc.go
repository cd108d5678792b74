package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// This file runs the client's side of the AS and TGS exchanges (RFC 4120
// §3.1, §3.3) itself, with gokrb5's message types, rather than through
// gokrb5's client: that client drops the KRB-ERROR code into text, has no
// context or clock, and loses the difference between "no KDC answered"
// and "the KDC said no", which is what users need to be told.

const (
	kdcTimeout    = 5 * time.Second // per KDC
	maxKDCReply   = 1 << 20         // tickets with large PACs reach tens of KiB
	udpReplyLimit = 65535
)

// kdcReplyError is a KRB-ERROR from a KDC.
type kdcReplyError struct{ e messages.KRBError }

func (k *kdcReplyError) Error() string { return krbErrorName(k.e.ErrorCode) + ": " + k.e.EText }

// ticket is a ticket (a TGT or a service ticket) and what we know of it.
type ticket struct {
	client   types.PrincipalName
	realm    string // client realm
	tkt      messages.Ticket
	key      types.EncryptionKey
	auth     time.Time
	start    time.Time
	end      time.Time
	renew    time.Time // zero if not renewable
	server   string    // "krbtgt/R@R", "rcmd/host@R"
	renewals int
}

func (t *ticket) renewable() bool { return !t.renew.IsZero() }

// kdc talks to the KDCs of a krb5.conf.
type kdc struct {
	conf   *krb5Conf
	now    func() time.Time
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// exchange sends req to a KDC of realm and returns the reply, a
// *kdcReplyError or a *KDCUnreachableError.
func (k *kdc) exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	_, kdcs, err := k.conf.cfg.GetKDCs(realm, true)
	if err != nil || len(kdcs) == 0 {
		return nil, &KDCUnreachableError{Realm: realm, Config: k.conf.path, Err: fmt.Errorf("no KDC known: %v", err)}
	}
	var tried []string
	var errs []error
	for i := 1; i <= len(kdcs); i++ {
		addr := kdcs[i]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "88")
		}
		tried = append(tried, addr)
		rep, err := k.exchangeTCP(ctx, addr, req)
		if err != nil && len(req) <= 1465 && ctx.Err() == nil {
			// Some KDCs listen on UDP only.
			var uerr error
			if rep, uerr = k.exchangeUDP(ctx, addr, req); uerr == nil {
				err = nil
			}
		}
		if err == nil {
			if len(rep) > 0 && rep[0] == 0x7e { // [APPLICATION 30] KRB-ERROR
				var ke messages.KRBError
				if uerr := safeDecode(func() error { return ke.Unmarshal(rep) }); uerr != nil {
					return nil, fmt.Errorf("client: KDC %s sent a malformed KRB-ERROR: %w", addr, uerr)
				}
				return nil, &kdcReplyError{ke}
			}
			return rep, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &KDCUnreachableError{Realm: realm, KDCs: tried, Config: k.conf.path, Err: errors.Join(errs...)}
}

func (k *kdc) exchangeTCP(ctx context.Context, addr string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kdcTimeout)
	defer cancel()
	c, err := k.dialer(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(req)), uint32(len(req)))
	if _, err := c.Write(append(msg, req...)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxKDCReply {
		return nil, fmt.Errorf("KDC reply of %d bytes", n)
	}
	rep := make([]byte, n)
	if _, err := io.ReadFull(c, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func (k *kdc) exchangeUDP(ctx context.Context, addr string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kdcTimeout)
	defer cancel()
	c, err := k.dialer(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, udpReplyLimit)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// safeDecode runs a gokrb5 decoder, turning a panic into an error: gokrb5
// is not trusted with what a network peer or a file sends.
func safeDecode(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	return f()
}

func nonce() (int, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
	if err != nil {
		return 0, err
	}
	return int(n.Int64()), nil
}

// secret is a long-term key source: a password or a keytab.
type secret struct {
	password string
	keytab   *keytab.Keytab
}

// key returns the client's key of etype, salted as pas says (for a
// password).
func (s secret) key(cname types.PrincipalName, realm string, etype int32, kvno int, pas types.PADataSequence) (types.EncryptionKey, error) {
	if s.keytab != nil {
		k, _, err := s.keytab.GetEncryptionKey(cname, realm, kvno, etype)
		if err != nil && kvno != 0 {
			k, _, err = s.keytab.GetEncryptionKey(cname, realm, 0, etype)
		}
		if err != nil {
			return types.EncryptionKey{}, fmt.Errorf("the keytab has no %s key for %s@%s", gssapi.EnctypeName(etype), cname.PrincipalNameString(), realm)
		}
		return k, nil
	}
	var k types.EncryptionKey
	err := safeDecode(func() error {
		var err error
		k, _, err = crypto.GetKeyFromPassword(s.password, cname, realm, etype, pas)
		return err
	})
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("derive the %s key from the password: %w", gssapi.EnctypeName(etype), err)
	}
	return k, nil
}

// login runs the AS exchange for a TGT with a password or keytab,
// pre-authenticating with an encrypted timestamp when the KDC asks for it.
func (k *kdc) login(ctx context.Context, cname types.PrincipalName, realm string, s secret) (*ticket, error) {
	principal := cname.PrincipalNameString() + "@" + realm
	req, err := messages.NewASReqForTGT(realm, k.conf.cfg, cname)
	if err != nil {
		return nil, fmt.Errorf("client: AS-REQ: %w", err)
	}
	now := k.now().UTC()
	req.ReqBody.Till = now.Add(k.conf.cfg.LibDefaults.TicketLifetime)
	if !req.ReqBody.RTime.IsZero() {
		req.ReqBody.RTime = now.Add(k.conf.cfg.LibDefaults.RenewLifetime)
	}
	var rep []byte
	for attempt := 0; ; attempt++ {
		b, err := req.Marshal()
		if err != nil {
			return nil, fmt.Errorf("client: AS-REQ: %w", err)
		}
		rep, err = k.exchange(ctx, realm, b)
		var ke *kdcReplyError
		if errors.As(err, &ke) && ke.e.ErrorCode == krbErrPreauthRequired && attempt == 0 {
			if err := k.addEncTimestamp(&req, ke.e, cname, realm, s); err != nil {
				return nil, &LoginError{Principal: principal, Err: err}
			}
			continue
		}
		if err != nil {
			return nil, k.loginError(err, principal)
		}
		break
	}
	var asRep messages.ASRep
	if err := safeDecode(func() error { return asRep.Unmarshal(rep) }); err != nil {
		return nil, fmt.Errorf("client: KDC sent a malformed AS-REP: %w", err)
	}
	key, err := s.key(asRep.CName, asRep.CRealm, asRep.EncPart.EType, asRep.EncPart.KVNO, asRep.PAData)
	if err != nil {
		return nil, &LoginError{Principal: principal, Err: err}
	}
	var part messages.EncKDCRepPart
	err = safeDecode(func() error {
		plain, err := crypto.DecryptEncPart(asRep.EncPart, key, keyusage.AS_REP_ENCPART)
		if err != nil {
			return err
		}
		return part.Unmarshal(plain)
	})
	if err != nil {
		return nil, &LoginError{Principal: principal, Code: krbErrBadIntegrity, Err: errors.New("the KDC's reply does not decrypt with our key")}
	}
	if part.Nonce != req.ReqBody.Nonce || !asRep.CName.Equal(cname) || !strings.EqualFold(asRep.CRealm, realm) {
		return nil, fmt.Errorf("client: the AS-REP does not answer our request (nonce or client name differ)")
	}
	if err := k.checkSkew(part.AuthTime); err != nil {
		return nil, err
	}
	return ticketOf(asRep.CName, asRep.CRealm, asRep.Ticket, part), nil
}

// addEncTimestamp adds PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2) with our clock,
// in the enctype and salt the KDC named in its ETYPE-INFO2.
func (k *kdc) addEncTimestamp(req *messages.ASReq, ke messages.KRBError, cname types.PrincipalName, realm string, s secret) error {
	var pas types.PADataSequence
	if err := safeDecode(func() error { return pas.Unmarshal(ke.EData) }); err != nil {
		return fmt.Errorf("the KDC's pre-authentication hints are malformed: %w", err)
	}
	etype := int32(0)
	for _, pa := range pas {
		if pa.PADataType == patype.PA_ETYPE_INFO2 {
			var info types.ETypeInfo2
			if err := safeDecode(func() error { var err error; info, err = pa.GetETypeInfo2(); return err }); err == nil && len(info) > 0 {
				etype = info[0].EType
				break
			}
		}
		if pa.PADataType == patype.PA_ETYPE_INFO {
			var info types.ETypeInfo
			if err := safeDecode(func() error { var err error; info, err = pa.GetETypeInfo(); return err }); err == nil && len(info) > 0 {
				etype = info[0].EType
			}
		}
	}
	if etype == 0 {
		etype = req.ReqBody.EType[0]
	}
	key, err := s.key(cname, realm, etype, 0, pas)
	if err != nil {
		return err
	}
	t := k.now().UTC()
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: t.Truncate(time.Second), PAUSec: t.Nanosecond() / 1000})
	if err != nil {
		return err
	}
	ed, err := crypto.GetEncryptedData(ts, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return err
	}
	b, err := ed.Marshal()
	if err != nil {
		return err
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: b})
	return nil
}

func (k *kdc) loginError(err error, principal string) error {
	var ke *kdcReplyError
	if !errors.As(err, &ke) {
		return err
	}
	if ke.e.ErrorCode == krbErrSkew {
		return k.skewError(ke.e)
	}
	return &LoginError{Principal: principal, Code: ke.e.ErrorCode, Err: ke}
}

func (k *kdc) skewError(ke messages.KRBError) *ClockSkewError {
	return &ClockSkewError{Peer: "KDC", Ours: k.now(), Theirs: ke.STime, Max: k.conf.cfg.LibDefaults.Clockskew, Code: krbErrSkew}
}

// checkSkew compares a time the KDC just stamped with our clock.
func (k *kdc) checkSkew(kdcTime time.Time) error {
	now, max := k.now(), k.conf.cfg.LibDefaults.Clockskew
	if d := now.Sub(kdcTime); d > max || d < -max {
		return &ClockSkewError{Peer: "KDC", Ours: now, Theirs: kdcTime, Max: max}
	}
	return nil
}

func ticketOf(cname types.PrincipalName, crealm string, tkt messages.Ticket, part messages.EncKDCRepPart) *ticket {
	t := &ticket{
		client: cname, realm: crealm, tkt: tkt, key: part.Key,
		auth: part.AuthTime, start: part.StartTime, end: part.EndTime,
		server: part.SName.PrincipalNameString() + "@" + part.SRealm,
	}
	if t.start.IsZero() {
		t.start = t.auth
	}
	if types.IsFlagSet(&part.Flags, flags.Renewable) {
		t.renew = part.RenewTill
	}
	return t
}

// tgs runs the TGS exchange with tgt: a ticket for sname in realm, or,
// with renew, a renewal of tgt itself (RFC 4120 §3.3, KDC option RENEW).
func (k *kdc) tgs(ctx context.Context, tgt *ticket, sname types.PrincipalName, realm string, renew bool) (*ticket, error) {
	n, err := nonce()
	if err != nil {
		return nil, err
	}
	now := k.now().UTC()
	body := messages.KDCReqBody{
		KDCOptions: types.NewKrbFlags(),
		Realm:      realm,
		CName:      tgt.client,
		SName:      sname,
		Till:       now.Add(k.conf.cfg.LibDefaults.TicketLifetime),
		Nonce:      n,
		EType:      k.conf.cfg.LibDefaults.DefaultTGSEnctypeIDs,
	}
	if renew {
		types.SetFlag(&body.KDCOptions, flags.Renew)
		types.SetFlag(&body.KDCOptions, flags.Renewable)
		body.Till = tgt.renew
		body.RTime = tgt.renew
	}
	bb, err := body.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ body: %w", err)
	}
	et, err := crypto.GetEtype(tgt.key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("client: TGT session key: %w", err)
	}
	sum, err := et.GetChecksumHash(tgt.key.KeyValue, bb, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ checksum: %w", err)
	}
	auth := types.Authenticator{
		AVNO:   iana.PVNO,
		CRealm: tgt.realm,
		CName:  tgt.client,
		Cksum:  types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		CTime:  now.Truncate(time.Second),
		Cusec:  now.Nanosecond() / 1000,
	}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ authenticator: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ab, tgt.key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, tgt.tkt.EncPart.KVNO)
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ authenticator: %w", err)
	}
	ap := messages.APReq{PVNO: iana.PVNO, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: tgt.tkt, EncryptedAuthenticator: ed}
	apb, err := ap.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ AP-REQ: %w", err)
	}
	req := messages.TGSReq{KDCReqFields: messages.KDCReqFields{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_TGS_REQ,
		PAData:  types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: apb}},
		ReqBody: body,
	}}
	b, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("client: TGS-REQ: %w", err)
	}
	rb, err := k.exchange(ctx, realm, b)
	if err != nil {
		return nil, err
	}
	rep, part, err := decodeTGSRep(rb, tgt)
	if err != nil {
		return nil, err
	}
	if part.Nonce != n || !rep.CName.Equal(tgt.client) {
		return nil, fmt.Errorf("client: the TGS-REP does not answer our request (nonce or client name differ)")
	}
	t := ticketOf(rep.CName, rep.CRealm, rep.Ticket, part)
	if renew {
		t.renewals = tgt.renewals + 1
	}
	return t, nil
}

// decodeTGSRep decodes a TGS-REP and decrypts its part with the TGT's
// session key.
func decodeTGSRep(b []byte, tgt *ticket) (messages.TGSRep, messages.EncKDCRepPart, error) {
	var rep messages.TGSRep
	var part messages.EncKDCRepPart
	err := safeDecode(func() error {
		if err := rep.Unmarshal(b); err != nil {
			return err
		}
		plain, err := crypto.DecryptEncPart(rep.EncPart, tgt.key, keyusage.TGS_REP_ENCPART_SESSION_KEY)
		if err != nil {
			return err
		}
		return part.Unmarshal(plain)
	})
	if err != nil {
		return rep, part, fmt.Errorf("client: KDC sent a TGS-REP we cannot decode: %w", err)
	}
	return rep, part, nil
}

// krbtgt is the TGS principal of realm.
func krbtgt(realm string) types.PrincipalName {
	return types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}}
}
