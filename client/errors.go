package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
)

// The errors below are what a user of a program built on this package
// sees when it cannot reach a destination. Each says what happened and
// what to do about it, and each is a type that callers can pick out with
// errors.As. None carries a key, a ticket, a password or payload bytes.

// NoCredentialsError: there is no usable Kerberos identity: no ticket
// cache, a cache this package cannot read (only FILE: and DIR: caches are
// files; KEYRING:, KCM:, API: and MSLSA: caches live in the kernel, a
// daemon or the OS), a cache without a ticket-granting ticket, or an
// expired one that cannot be renewed.
type NoCredentialsError struct {
	// Cache is the ticket cache name as configured (KRB5CCNAME or the
	// default), e.g. "FILE:/tmp/krb5cc_1000" or "KEYRING:persistent:1000".
	Cache string
	// Type is the cache type when it is one this package cannot read
	// ("KEYRING", "KCM", "API", "MSLSA", "MEMORY"), else "".
	Type string
	// Expired is when the ticket-granting ticket ended, if that is the
	// problem.
	Expired time.Time
	// Err is the underlying failure (file not found, no TGT, ...).
	Err error
}

func (e *NoCredentialsError) Error() string {
	switch {
	case e.Type != "":
		return fmt.Sprintf("no Kerberos credentials this program can read: the ticket cache %s is a %s cache, which only the system's Kerberos library can open; "+
			"use a file cache instead: export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u) then run kinit", e.Cache, cacheTypeWords(e.Type))
	case !e.Expired.IsZero():
		return fmt.Sprintf("Kerberos ticket in %s expired at %s and cannot be renewed: run kinit", e.Cache, e.Expired.Local().Format(time.DateTime))
	}
	return fmt.Sprintf("no Kerberos credentials in the ticket cache %s (%v): run kinit (or kinit you@YOUR.REALM) to get a ticket, or point KRB5CCNAME at your cache", e.Cache, e.Err)
}

func (e *NoCredentialsError) Unwrap() error { return e.Err }

func cacheTypeWords(t string) string {
	switch t {
	case "KEYRING":
		return "KEYRING: (kernel keyring)"
	case "KCM":
		return "KCM: (sssd-kcm or Heimdal's kcm daemon)"
	case "API":
		return "API: (macOS or Windows credential store)"
	case "MSLSA":
		return "MSLSA: (Windows logon session)"
	case "MEMORY":
		return "MEMORY: (in-process)"
	}
	return t + ":"
}

// LoginError: the KDC refused to issue a ticket-granting ticket for the
// configured principal with the password or keytab given (wrong password,
// no such client principal, a keytab without a key for it, a locked
// account).
type LoginError struct {
	Principal string // "alice@EXAMPLE.COM"
	Code      int32  // the KRB-ERROR code, 0 if the failure was local
	Err       error
}

func (e *LoginError) Error() string {
	hint := "check the principal name and the password or keytab"
	switch e.Code {
	case krbErrCPrincipalUnknown:
		hint = "the KDC has no such client principal: check the name and realm"
	case krbErrPreauthFailed, krbErrBadIntegrity:
		hint = "the password or the keytab's key is wrong (a keytab must hold the current kvno)"
	case krbErrClientRevoked:
		hint = "the account is disabled or locked"
	case krbErrKeyExpired:
		hint = "the password has expired: change it with kpasswd"
	}
	return fmt.Sprintf("Kerberos login as %s failed: %v; %s", e.Principal, e.Err, hint)
}

func (e *LoginError) Unwrap() error { return e.Err }

// PrincipalError: the service principal the client asked a ticket for is
// not the gateway's: the KDC does not know it (KDC_ERR_S_PRINCIPAL_UNKNOWN),
// or the gateway answered that the ticket is not for one of its keys.
type PrincipalError struct {
	// SPN is the service principal asked for, "rcmd/gw.example.com@EXAMPLE.COM".
	SPN string
	// AtKDC: the KDC has no such principal; otherwise the gateway refused
	// the ticket.
	AtKDC bool
	Code  int32 // the KRB-ERROR code
	Err   error
}

func (e *PrincipalError) Error() string {
	how := "set the gateway's service principal explicitly (Options.ServicePrincipal, e.g. \"rcmd/gw.example.com\", or \"socks\" for the RFC 1961 socks/<host> form)"
	if e.AtKDC {
		return fmt.Sprintf("the KDC has no service principal %s (KDC_ERR_S_PRINCIPAL_UNKNOWN): the gateway is registered under another name; %s", e.SPN, how)
	}
	return fmt.Sprintf("the gateway cannot decrypt the ticket for %s (%v): its keytab does not hold that principal's current key; ask its administrator, or %s", e.SPN, e.Err, how)
}

func (e *PrincipalError) Unwrap() error { return e.Err }

// ClockSkewError: this machine's clock and the KDC's (or the gateway's)
// differ by more than the allowed skew, 5 minutes by default.
type ClockSkewError struct {
	Peer   string        // "KDC" or "gateway"
	Ours   time.Time     // our clock when it was noticed
	Theirs time.Time     // the peer's clock, when known
	Max    time.Duration // allowed skew
	Code   int32         // KRB_AP_ERR_SKEW (37) when the peer said so, 0 when we noticed
}

func (e *ClockSkewError) Error() string {
	var diff string
	if !e.Theirs.IsZero() {
		d := e.Ours.Sub(e.Theirs).Round(time.Second)
		dir := "ahead of"
		if d < 0 {
			d, dir = -d, "behind"
		}
		diff = fmt.Sprintf(": this machine's clock is %s %s the %s's", d, dir, e.Peer)
	}
	return fmt.Sprintf("clock skew too great between this machine and the %s (more than %s allowed)%s; "+
		"set the clock right (enable NTP: timedatectl set-ntp true)", e.Peer, e.Max, diff)
}

// KDCUnreachableError: no KDC of the realm answered.
type KDCUnreachableError struct {
	Realm  string
	KDCs   []string // the addresses tried
	Config string   // the krb5.conf used
	Err    error
}

func (e *KDCUnreachableError) Error() string {
	kdcs := strings.Join(e.KDCs, ", ")
	if kdcs == "" {
		kdcs = "none configured"
	}
	return fmt.Sprintf("cannot reach a KDC of realm %s (tried %s): %v; check the kdc lines of [realms] in %s (or KRB5_CONFIG) and that the network lets you reach them",
		e.Realm, kdcs, e.Err, e.Config)
}

func (e *KDCUnreachableError) Unwrap() error { return e.Err }

// KDCError: the KDC refused a request for a reason none of the other
// types describes.
type KDCError struct {
	Code int32
	Text string // the KDC's e-text
	What string // "ticket for rcmd/gw@R", "renewal of the TGT", ...
}

func (e *KDCError) Error() string {
	s := fmt.Sprintf("the KDC refused the %s: %s", e.What, krbErrorName(e.Code))
	if e.Text != "" {
		s += " (" + e.Text + ")"
	}
	return s
}

// LevelError: no protection level acceptable to both sides. Either the
// gateway granted a level below the lowest this client accepts (a
// downgrade), or it refused the requested one (Dante closes the
// connection; gssocks sends the RFC 1961 abort). errors.Is(err,
// encap.ErrLevelRefused) is true.
type LevelError struct {
	Asked    encap.Level
	Granted  encap.Level // valid if Answered
	Answered bool        // the gateway granted a level (else it refused)
	Accepted []encap.Level
	Err      error // for a refusal: what the gateway did
}

func (e *LevelError) Error() string {
	acc := make([]string, len(e.Accepted))
	for i, l := range e.Accepted {
		acc[i] = l.String()
	}
	if e.Answered {
		return fmt.Sprintf("protection level refused: asked %s, the gateway granted %s, this client accepts only %s; "+
			"the gateway's rule for you does not allow what you asked: ask its administrator, or accept a lower level (Options.MinLevel) if your policy allows",
			e.Asked, e.Granted, strings.Join(acc, ", "))
	}
	return fmt.Sprintf("protection level refused: asked %s and the gateway refused it (%v); its rule for you allows other levels: try another level (Options.Level)",
		e.Asked, e.Err)
}

// Is makes errors.Is(err, encap.ErrLevelRefused) true.
func (e *LevelError) Is(target error) bool { return target == encap.ErrLevelRefused }

func (e *LevelError) Unwrap() error { return e.Err }

// AuthError: the gateway refused our Kerberos authentication. A gssocks
// gateway sends the RFC 1961 abort without a reason; an MIT acceptor
// (Dante) may send a KRB-ERROR, whose code is kept.
type AuthError struct {
	SPN  string
	Code int32 // KRB-ERROR code, 0 if none was sent
	Err  error
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("the gateway refused the Kerberos ticket for %s", e.SPN)
	if e.Code != 0 {
		s += ": " + krbErrorName(e.Code)
	} else if e.Err != nil {
		s += fmt.Sprintf(" (%v)", e.Err)
	}
	return s + "; the gateway's log says why. Common causes: its keytab lacks the current key of " + e.SPN +
		", its clock is more than 5 minutes off, or it accepts another service principal (set Options.ServicePrincipal)"
}

func (e *AuthError) Unwrap() error { return e.Err }

// ReplyError is a SOCKS reply other than success (RFC 1928 §6): the
// gateway authenticated the client and refused or failed the request.
type ReplyError struct{ Reply socks5.Reply }

func (e *ReplyError) Error() string {
	return fmt.Sprintf("gateway refused the request: reply %#02x (%s, RFC 1928 §6): %s", byte(e.Reply), e.Reply, replyMeaning(e.Reply))
}

func replyMeaning(r socks5.Reply) string {
	switch r {
	case socks5.ReplyNotAllowed:
		return "the gateway's rules do not allow this destination, port or command for your identity; ask its administrator"
	case socks5.ReplyGeneralFailure:
		return "the gateway failed; its log says why"
	case socks5.ReplyNetworkUnreachable:
		return "the gateway has no route to the destination's network"
	case socks5.ReplyHostUnreachable:
		return "the destination did not answer or its name did not resolve at the gateway"
	case socks5.ReplyConnectionRefused:
		return "the destination refused the connection: nothing listens on that port"
	case socks5.ReplyTTLExpired:
		return "the destination did not answer in time"
	case socks5.ReplyCommandNotSupported:
		return "the gateway does not support this command"
	case socks5.ReplyAddressTypeNotSupported:
		return "the gateway does not support this kind of address"
	}
	return "an unassigned reply code"
}

// ErrNoDatagram: a datagram that does not carry a SOCKS UDP header.
var ErrNoDatagram = errors.New("client: not a SOCKS datagram")

// ErrAssociationEnded: the UDP association's control connection closed,
// which ends the association (RFC 1928 §7).
var ErrAssociationEnded = errors.New("client: UDP association ended: its control connection closed")

// KRB-ERROR codes (RFC 4120 §7.5.9) this package branches on.
const (
	krbErrCPrincipalUnknown int32 = 6
	krbErrSPrincipalUnknown int32 = 7
	krbErrClientRevoked     int32 = 18
	krbErrKeyExpired        int32 = 23
	krbErrPreauthFailed     int32 = 24
	krbErrPreauthRequired   int32 = 25
	krbErrBadIntegrity      int32 = 31
	krbErrTktExpired        int32 = 32
	krbErrTktNYV            int32 = 33
	krbErrNotUs             int32 = 35
	krbErrBadMatch          int32 = 36
	krbErrSkew              int32 = 37
	krbErrModified          int32 = 41
	krbErrBadKeyVer         int32 = 44
	krbErrNoKey             int32 = 45
	krbErrWrongRealm        int32 = 68
)

func krbErrorName(code int32) string {
	names := map[int32]string{
		krbErrCPrincipalUnknown: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
		krbErrSPrincipalUnknown: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
		krbErrClientRevoked:     "KDC_ERR_CLIENT_REVOKED",
		krbErrKeyExpired:        "KDC_ERR_KEY_EXPIRED",
		krbErrPreauthFailed:     "KDC_ERR_PREAUTH_FAILED",
		krbErrPreauthRequired:   "KDC_ERR_PREAUTH_REQUIRED",
		krbErrBadIntegrity:      "KRB_AP_ERR_BAD_INTEGRITY",
		krbErrTktExpired:        "KRB_AP_ERR_TKT_EXPIRED",
		krbErrTktNYV:            "KRB_AP_ERR_TKT_NYV",
		krbErrNotUs:             "KRB_AP_ERR_NOT_US",
		krbErrBadMatch:          "KRB_AP_ERR_BADMATCH",
		krbErrSkew:              "KRB_AP_ERR_SKEW",
		krbErrModified:          "KRB_AP_ERR_MODIFIED",
		krbErrBadKeyVer:         "KRB_AP_ERR_BADKEYVER",
		krbErrNoKey:             "KRB_AP_ERR_NOKEY",
		krbErrWrongRealm:        "KDC_ERR_WRONG_REALM",
	}
	if n, ok := names[code]; ok {
		return fmt.Sprintf("%s (%d)", n, code)
	}
	return fmt.Sprintf("KRB-ERROR %d", code)
}
