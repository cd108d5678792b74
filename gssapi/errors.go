package gssapi

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one
// of them (test with errors.Is), so callers can map failures to GSS major
// status codes, log lines and wire replies. Error texts never carry key
// material, decrypted bytes or raw file contents; names taken from the wire
// are quoted.
var (
	// ErrDefectiveToken: the token is malformed (framing, lengths, fields)
	// (GSS_S_DEFECTIVE_TOKEN).
	ErrDefectiveToken = errors.New("gssapi: defective token")
	// ErrBadMech: the token is not for the Kerberos V5 mechanism
	// (GSS_S_BAD_MECH).
	ErrBadMech = errors.New("gssapi: not a Kerberos V5 token")
	// ErrBadIntegrity: a checksum or decryption failed (GSS_S_BAD_MIC /
	// KRB_AP_ERR_BAD_INTEGRITY).
	ErrBadIntegrity = errors.New("gssapi: integrity check failed")
	// ErrDuplicateToken: a per-message token was seen before.
	ErrDuplicateToken = errors.New("gssapi: duplicate token")
	// ErrOldToken: a per-message token is older than the replay window.
	ErrOldToken = errors.New("gssapi: token too old")
	// ErrUnseqToken: a stream token arrived out of order (earlier than expected).
	ErrUnseqToken = errors.New("gssapi: token out of sequence")
	// ErrGapToken: a stream token skipped one or more sequence numbers.
	ErrGapToken = errors.New("gssapi: token sequence gap")
	// ErrWrongDirection: the SentByAcceptor flag says the token came from us.
	ErrWrongDirection = errors.New("gssapi: token direction flag wrong")
	// ErrWrongKey: the AcceptorSubkey flag does not match the context's key.
	ErrWrongKey = errors.New("gssapi: token key flag wrong")
	// ErrReplay: an AP-REQ authenticator was already used (KRB_AP_ERR_REPEAT).
	ErrReplay = errors.New("gssapi: replayed AP-REQ")
	// ErrReplayCacheFull: the replay cache is at its memory cap; the AP-REQ
	// is refused rather than risk accepting a replay.
	ErrReplayCacheFull = errors.New("gssapi: replay cache full")
	// ErrReplayQuota: the client principal holds its whole share of the
	// replay cache; its AP-REQs are refused until its entries expire, other
	// principals' are not.
	ErrReplayQuota = errors.New("gssapi: client over its replay cache share")
	// ErrReplayStoreUnavailable: the replay store (a shared one, such as
	// Redis) cannot tell whether the authenticator is a replay; the AP-REQ
	// is refused rather than risk accepting a replay.
	ErrReplayStoreUnavailable = errors.New("gssapi: replay store unavailable")
	// ErrSkew: the authenticator's time is outside the allowed clock skew.
	ErrSkew = errors.New("gssapi: clock skew too great")
	// ErrTicketExpired: the ticket's end time has passed.
	ErrTicketExpired = errors.New("gssapi: ticket expired")
	// ErrTicketNotYetValid: the ticket's start time is in the future or it is
	// flagged invalid.
	ErrTicketNotYetValid = errors.New("gssapi: ticket not yet valid")
	// ErrClientMismatch: the authenticator names a different client or realm
	// than the ticket.
	ErrClientMismatch = errors.New("gssapi: authenticator client does not match ticket")
	// ErrBadAddress: the ticket is bound to addresses that do not include the
	// peer.
	ErrBadAddress = errors.New("gssapi: ticket not valid from this address")
	// ErrPrincipalNotAllowed: the ticket is for a service principal the
	// acceptor is not configured to be, and no key of a configured one
	// opens it (KRB_AP_ERR_NOT_US).
	ErrPrincipalNotAllowed = errors.New("gssapi: service principal not accepted")
	// ErrNoKey: the keytab has no key for the ticket's principal, kvno and
	// enctype, and no other accepted key opens it (KRB_AP_ERR_NOKEY,
	// KRB_AP_ERR_BADKEYVER).
	ErrNoKey = errors.New("gssapi: no matching key in keytab")
	// ErrKRBError: the peer answered with a KRB-ERROR.
	ErrKRBError = errors.New("gssapi: peer sent KRB-ERROR")
	// ErrContextExpired: the context's ticket has expired
	// (GSS_S_CONTEXT_EXPIRED); see Context.CheckExpiry.
	ErrContextExpired = errors.New("gssapi: context expired")
	// ErrUnsupportedEnctype: a key's enctype is not implemented here; the
	// error is an *UnsupportedEnctypeError.
	ErrUnsupportedEnctype = errors.New("gssapi: enctype not supported")
	// ErrBadName: a principal name does not parse (GSS_S_BAD_NAME).
	ErrBadName = errors.New("gssapi: bad principal name")
	// ErrBadKeytab: a keytab cannot be used: unreadable, or not a
	// well-formed keytab file. The error is a *KeytabError.
	ErrBadKeytab = errors.New("gssapi: bad keytab")
	// ErrNoAESKey: the keytab holds no AES key (see EnctypeSupported) for a
	// configured principal, so no ticket for it could key a context. The
	// error is a *KeytabKeyError.
	ErrNoAESKey = errors.New("gssapi: no AES key in keytab")
	// ErrNoKrb5Mech: a SPNEGO (RFC 4178) NegTokenInit this acceptor cannot
	// complete in one round trip with Kerberos V5: no Kerberos mechanism in
	// its list, Kerberos not the client's first choice, or no optimistic
	// Kerberos token (GSS_S_BAD_MECH). RFC 1961 servers answer with the
	// abort message.
	ErrNoKrb5Mech = errors.New("gssapi: SPNEGO without a Kerberos V5 token")
	// ErrRealmNotTrusted: the ticket's client realm, or a realm it
	// transited (RFC 4120 §3.3.3.2), is neither the service's realm nor
	// one of AcceptorConfig.TrustedRealms. The error is a *RealmError.
	ErrRealmNotTrusted = errors.New("gssapi: realm not trusted")
	// ErrAnonymous: the ticket is anonymous (RFC 6112: the anonymous
	// ticket flag or the WELLKNOWN/ANONYMOUS client) and
	// AcceptorConfig.AllowAnonymous is off.
	ErrAnonymous = errors.New("gssapi: anonymous ticket")
	// ErrNotAUser: the ticket's client is not a user but a service (a
	// krbtgt, a host/... or other multi-component name, a service name
	// type) and AcceptorConfig.AllowServiceClients is off; krbtgt clients
	// are refused always.
	ErrNotAUser = errors.New("gssapi: client is not a user")
	// Errors of PasswordVerifier.Verify (password.go); a username refused
	// before any KDC is asked wraps ErrBadName or ErrRealmNotTrusted.
	//
	// ErrBadPassword: the KDC refused the password (KDC_ERR_PREAUTH_FAILED,
	// an AS-REP that does not decrypt with it), or the account cannot log
	// in (revoked, locked out, password expired).
	ErrBadPassword = errors.New("gssapi: password refused by the KDC")
	// ErrUnknownPrincipal: the KDC does not know the user
	// (KDC_ERR_C_PRINCIPAL_UNKNOWN).
	ErrUnknownPrincipal = errors.New("gssapi: client principal unknown to the KDC")
	// ErrKDCUnreachable: no KDC of the realm answered (krb5.conf lists
	// none, or every one timed out or refused the connection).
	ErrKDCUnreachable = errors.New("gssapi: KDC unreachable")
	// ErrPasswordValidation: the KDC accepted the password but the
	// gateway could not validate the answer: the service ticket for the
	// gateway's principal was refused, or the acceptor refused it (a KDC
	// that does not know the keytab's key, a spoofed one; an untrusted
	// realm; a client that is not a user). The cause is in the text.
	ErrPasswordValidation = errors.New("gssapi: password login not validated")
	// ErrFailure: a failure that is not the peer's doing: randomness,
	// encoding our own messages, misuse of the API (GSS_S_FAILURE).
	ErrFailure = errors.New("gssapi: failure")
)

// UnsupportedEnctypeError refuses a key of an enctype this mechanism does not
// implement (RC4-HMAC and DES3 use the RFC 1964 token format; DES is broken).
// It wraps ErrUnsupportedEnctype.
type UnsupportedEnctypeError struct {
	Enctype int32
	// Role says which key: "session key", "initiator subkey", "acceptor
	// subkey", or "ticket" (the service key the ticket is encrypted in).
	Role string
}

func (e *UnsupportedEnctypeError) Error() string {
	supported := "only AES enctypes 17, 18, 19, 20 are"
	if e.Role == "ticket" {
		supported = "tickets are opened with enctypes 16, 17, 18, 19, 20, 23"
	}
	return fmt.Sprintf("gssapi: %s enctype %d (%s) is not supported; %s",
		e.Role, e.Enctype, EnctypeName(e.Enctype), supported)
}

// Is makes errors.Is(err, ErrUnsupportedEnctype) true.
func (e *UnsupportedEnctypeError) Is(target error) bool { return target == ErrUnsupportedEnctype }

// KRBError is a KRB-ERROR received from the peer in place of an AP-REP.
type KRBError struct {
	Code int32
	Text string // e-text, as the peer sent it
}

func (e *KRBError) Error() string {
	return fmt.Sprintf("gssapi: peer sent KRB-ERROR %d: %s", e.Code, strconv.Quote(e.Text))
}

// Is makes errors.Is(err, ErrKRBError) true.
func (e *KRBError) Is(target error) bool { return target == ErrKRBError }

// KeytabError says why a keytab cannot be used, without quoting its bytes.
// It wraps ErrBadKeytab and, for I/O failures, the underlying error (so
// errors.Is(err, fs.ErrNotExist) works).
type KeytabError struct {
	Path   string // "" for ParseKeytab
	Entry  int    // 1-based entry the problem is in; 0: the file as a whole
	Reason string // e.g. "truncated: record of 96 bytes, 40 left"
	Err    error  // underlying I/O error, or nil
}

func (e *KeytabError) Error() string {
	s := "gssapi: keytab"
	if e.Path != "" {
		s += " " + strconv.Quote(e.Path)
	}
	if e.Entry > 0 {
		s += fmt.Sprintf(": entry %d", e.Entry)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrBadKeytab and the underlying error, if any.
func (e *KeytabError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrBadKeytab, e.Err}
	}
	return []error{ErrBadKeytab}
}

// KeytabKeyError says that a configured principal (or, when none is
// configured, the keytab as a whole) has no AES key. It wraps ErrNoAESKey.
type KeytabKeyError struct {
	Principal Principal // the configured pattern; zero when none is configured
	Keys      int       // keys the keytab holds for it, of any enctype
}

func (e *KeytabKeyError) Error() string {
	who := "any principal"
	if e.Principal != (Principal{}) {
		who = strconv.Quote(e.Principal.String())
	}
	if e.Keys == 0 {
		return fmt.Sprintf("gssapi: the keytab holds no key for %s", who)
	}
	return fmt.Sprintf("gssapi: the keytab holds %d keys for %s, none of them AES (enctypes 17, 18, 19, 20)", e.Keys, who)
}

// Is makes errors.Is(err, ErrNoAESKey) true.
func (e *KeytabKeyError) Is(target error) bool { return target == ErrNoAESKey }

// quote formats a name taken from the wire for an error text: Go-quoted,
// so a newline or escape sequence in a hostile sname cannot forge a log
// line.
func quote(s string) string { return strconv.Quote(s) }

// RealmError names the realm that made Accept refuse a ticket. It wraps
// ErrRealmNotTrusted.
type RealmError struct {
	Realm  string // the untrusted realm, as the ticket names it
	Client string // the ticket's client principal, name@REALM
	// Transited is true when Realm is on the ticket's transited path
	// rather than the client's realm.
	Transited bool
	// Reason, when not empty, says why the path could not be read (an
	// undecodable transited field); Realm is then "".
	Reason string
}

func (e *RealmError) Error() string {
	switch {
	case e.Reason != "":
		return fmt.Sprintf("gssapi: ticket of %s: %s; refused (realm trust cannot be checked)", quote(e.Client), e.Reason)
	case e.Transited:
		return fmt.Sprintf("gssapi: ticket of %s transited realm %s, which is not trusted (not the service's realm nor in the trusted realms)", quote(e.Client), quote(e.Realm))
	}
	return fmt.Sprintf("gssapi: client realm %s of %s is not trusted (not the service's realm nor in the trusted realms)", quote(e.Realm), quote(e.Client))
}

// Is makes errors.Is(err, ErrRealmNotTrusted) true.
func (e *RealmError) Is(target error) bool { return target == ErrRealmNotTrusted }
