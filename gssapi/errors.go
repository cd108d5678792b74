package gssapi

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (test with errors.Is), so callers can map failures to GSS major status
// codes, log lines and wire replies.
var (
	// ErrDefectiveToken: the token is malformed (framing, lengths, fields).
	ErrDefectiveToken = errors.New("gssapi: defective token")
	// ErrBadMech: the token is not for the Kerberos V5 mechanism.
	ErrBadMech = errors.New("gssapi: not a Kerberos V5 token")
	// ErrBadIntegrity: a checksum or decryption failed (GSS_S_BAD_MIC /
	// KRB_AP_ERR_BAD_INTEGRITY).
	ErrBadIntegrity = errors.New("gssapi: integrity check failed")
	// ErrDuplicateToken: a per-message token or AP-REQ was seen before.
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
	// ErrReplay: an AP-REQ authenticator was already used.
	ErrReplay = errors.New("gssapi: replayed AP-REQ")
	// ErrReplayCacheFull: the replay cache is at its memory cap; the AP-REQ
	// is refused rather than risk accepting a replay.
	ErrReplayCacheFull = errors.New("gssapi: replay cache full")
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
	// acceptor is not configured to be.
	ErrPrincipalNotAllowed = errors.New("gssapi: service principal not accepted")
	// ErrNoKey: the keytab has no key for the ticket's principal, kvno and
	// enctype.
	ErrNoKey = errors.New("gssapi: no matching key in keytab")
	// ErrKRBError: the peer answered with a KRB-ERROR.
	ErrKRBError = errors.New("gssapi: peer sent KRB-ERROR")
	// ErrContextExpired: the context's ticket has expired.
	ErrContextExpired = errors.New("gssapi: context expired")
)

// UnsupportedEnctypeError refuses a key of an enctype this mechanism does not
// implement (RC4-HMAC and DES3 use the RFC 1964 token format; DES is broken).
type UnsupportedEnctypeError struct {
	Enctype int32
	// Role says which key: "session key", "initiator subkey", "acceptor subkey".
	Role string
}

func (e *UnsupportedEnctypeError) Error() string {
	return fmt.Sprintf("gssapi: %s enctype %d (%s) is not supported; only AES enctypes 17, 18, 19, 20 are",
		e.Role, e.Enctype, EnctypeName(e.Enctype))
}

// KRBError is a KRB-ERROR received from the peer in place of an AP-REP.
type KRBError struct {
	Code int32
	Text string
}

func (e *KRBError) Error() string {
	return fmt.Sprintf("gssapi: peer sent KRB-ERROR %d: %s", e.Code, e.Text)
}

// Is makes errors.Is(err, ErrKRBError) true.
func (e *KRBError) Is(target error) bool { return target == ErrKRBError }
