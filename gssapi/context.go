package gssapi

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Flags are the GSS context flags of RFC 2743 §1.2.1.1 as carried in the
// 0x8003 authenticator checksum (RFC 4121 §4.1.1.1).
type Flags uint32

// GSS flag bits.
const (
	FlagDeleg    Flags = 1
	FlagMutual   Flags = 2
	FlagReplay   Flags = 4
	FlagSequence Flags = 8
	FlagConf     Flags = 16
	FlagInteg    Flags = 32
)

func (f Flags) String() string {
	names := []struct {
		f Flags
		n string
	}{{FlagDeleg, "deleg"}, {FlagMutual, "mutual"}, {FlagReplay, "replay"}, {FlagSequence, "sequence"}, {FlagConf, "conf"}, {FlagInteg, "integ"}}
	var out []string
	for _, x := range names {
		if f&x.f != 0 {
			out = append(out, x.n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// ADInfo is what the ticket's PAC says about an Active Directory user.
type ADInfo struct {
	UserSID   string
	GroupSIDs []string // nested groups expanded by the KDC, de-duplicated
	LogonName string   // EffectiveName from the logon info
	Domain    string   // LogonDomainName
}

// Per-message token flags (RFC 4121 §4.2.2).
const (
	tokFlagSentByAcceptor byte = 0x01
	tokFlagSealed         byte = 0x02
	tokFlagAcceptorSubkey byte = 0x04
)

// Key usages (RFC 4121 §2).
const (
	usageAcceptorSeal  = 22
	usageAcceptorSign  = 23
	usageInitiatorSeal = 24
	usageInitiatorSign = 25
)

// Context is an established Kerberos GSS security context. Wrap/GetMIC (the
// sending direction) and Unwrap/VerifyMIC (the receiving direction) may be
// used from two goroutines at once; calls within one direction are
// serialised.
type Context struct {
	initiator bool
	enctype   int32
	flags     Flags
	client    Principal
	service   Principal
	kvno      int
	expiry    time.Time
	ad        *ADInfo
	adErr     error
	cb        bool // the initiator sent channel bindings
	spnego    bool // the initiator wrapped its token in SPNEGO
	kind      ClientKind
	trust     RealmTrust
	// keyFlag is tokFlagAcceptorSubkey when the acceptor asserted a subkey.
	keyFlag byte
	p       *profile
	key     []byte // the context key; each direction derives its keys from it on first use

	send struct {
		sync.Mutex
		keys usageKeys
		seq  uint64
	}
	recv struct {
		sync.Mutex
		keys usageKeys
		seq  recvSeq
	}
}

// newContext makes a context keyed by a copy of key. The per-message keys
// are derived when a direction first needs them (see usageKeys).
func newContext(initiator bool, key []byte, enctype int32, role string, sendSeq, recvSeq uint64) (*Context, error) {
	p, err := lookupProfile(enctype, role)
	if err != nil {
		return nil, err
	}
	if len(key) != p.keyLen {
		return nil, fmt.Errorf("%w: %s key is %d bytes, want %d", ErrDefectiveToken, EnctypeName(p.id), len(key), p.keyLen)
	}
	mySeal, mySign, peerSeal, peerSign := usageAcceptorSeal, usageAcceptorSign, usageInitiatorSeal, usageInitiatorSign
	if initiator {
		mySeal, mySign, peerSeal, peerSign = peerSeal, peerSign, mySeal, mySign
	}
	c := &Context{initiator: initiator, enctype: enctype, p: p, key: bytes.Clone(key)}
	c.send.keys.init(p, c.key, uint32(mySeal), uint32(mySign), false)
	c.recv.keys.init(p, c.key, uint32(peerSeal), uint32(peerSign), true)
	c.send.seq = sendSeq
	c.recv.seq.next = recvSeq
	return c, nil
}

// IsInitiator reports whether this side initiated the context.
func (c *Context) IsInitiator() bool { return c.initiator }

// Client is the authenticated client principal, from the ticket.
func (c *Context) Client() Principal { return c.client }

// Service is the acceptor principal: the keytab entry whose key opened the
// ticket (as MIT's acceptor reports it). The ticket's sname, outside its
// encryption, may differ: an alias sharing the key, other capitals.
func (c *Context) Service() Principal { return c.service }

// KVNO is the key version number of the service key that decrypted the
// ticket (acceptor side): the keytab entry's, or the ticket's when the
// entry holds none (kvno 0) or only its low 8 bits.
func (c *Context) KVNO() int { return c.kvno }

// Flags are the GSS flags the initiator asked for.
func (c *Context) Flags() Flags { return c.flags }

// Enctype is the enctype of the key protecting per-message tokens.
func (c *Context) Enctype() int32 { return c.enctype }

// Expiry is the end time of the ticket the context rests on (acceptor
// side); zero when unknown (initiator contexts).
func (c *Context) Expiry() time.Time { return c.expiry }

// CheckExpiry returns an error wrapping ErrContextExpired once now has
// reached the ticket's end time, as MIT's GSS-API reports
// GSS_S_CONTEXT_EXPIRED (RFC 2743 §1.2.1.3): the KDC vouched for the
// client until then. No clock skew is granted here; it was granted when
// the ticket was accepted. A context with no known end time never expires.
// Sessions call it before relaying and schedule their end at Expiry.
func (c *Context) CheckExpiry(now time.Time) error {
	if c.expiry.IsZero() || now.Before(c.expiry) {
		return nil
	}
	return fmt.Errorf("%w: ticket of %s ended %s", ErrContextExpired, quote(c.client.String()), c.expiry.UTC().Format(time.RFC3339))
}

// AcceptorSubkey reports whether per-message tokens use an acceptor subkey.
func (c *Context) AcceptorSubkey() bool { return c.keyFlag != 0 }

// ChannelBindings reports whether the initiator sent non-zero channel
// bindings (RFC 1961 defines none; gssocks does not check them).
func (c *Context) ChannelBindings() bool { return c.cb }

// AD returns the Active Directory data from the ticket's PAC, or nil when the
// ticket has none (MIT tickets). PACError says why a present PAC was unusable.
func (c *Context) AD() *ADInfo { return c.ad }

// PACError is the reason a PAC in the ticket could not be used, or nil.
func (c *Context) PACError() error { return c.adErr }

// SetDatagramMode switches the receiving direction from strict stream order
// to a sliding replay window: tokens may then be lost or reordered but not
// replayed. RFC 1961 UDP datagrams use the control connection's context.
func (c *Context) SetDatagramMode() {
	c.recv.Lock()
	c.recv.seq.toDatagram()
	c.recv.Unlock()
}

// WrapOverhead is the number of bytes a Wrap token adds to its message.
func (c *Context) WrapOverhead(conf bool) int {
	p := c.p
	if conf {
		return wrapHeaderLen + confounderLen + wrapHeaderLen + p.macLen
	}
	return wrapHeaderLen + p.macLen
}

// WrapSizeLimit is the largest message whose Wrap token fits in maxToken
// bytes (gss_wrap_size_limit).
func (c *Context) WrapSizeLimit(maxToken int, conf bool) int {
	return max(0, maxToken-c.WrapOverhead(conf))
}

func (c *Context) String() string {
	role := "acceptor"
	if c.initiator {
		role = "initiator"
	}
	return fmt.Sprintf("krb5 %s context %s -> %s (%s, flags %s)", role, c.client, c.service, EnctypeName(c.enctype), c.flags)
}
