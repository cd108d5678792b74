package socks5

import (
	"errors"
	"fmt"
	"io"
)

// UserPassVersion is the VER field of the RFC 1929 subnegotiation (§2),
// not the SOCKS version.
const UserPassVersion = 0x01

// UserPassStatus is the STATUS field of the RFC 1929 reply (§2): X'00' is
// success, anything else failure, after which the server closes.
type UserPassStatus byte

// Statuses. RFC 1929 gives no meaning to failure values beyond "not
// X'00'"; gssocks sends X'01'.
const (
	UserPassSuccess UserPassStatus = 0x00
	UserPassFailure UserPassStatus = 0x01
)

// String gives "success", "failure" or "failure(0x05)".
func (s UserPassStatus) String() string {
	switch s {
	case UserPassSuccess:
		return "success"
	case UserPassFailure:
		return "failure"
	}
	return fmt.Sprintf("failure(%#02x)", byte(s))
}

// UserPassRequest is the client's username/password request (RFC 1929
// §2): 1 to 255 bytes each. The codec does not interpret the bytes (no
// charset is defined); the caller must never log Password.
type UserPassRequest struct {
	Username string
	Password string
}

// ErrBadUserPass is wrapped by every *ProtocolError ReadUserPassRequest
// returns for a malformed request (a version other than X'01', an empty
// field), so that a caller can tell a hostile or broken client from a
// connection that ended.
var ErrBadUserPass = errors.New("socks5: malformed username/password request")

// Details of the malformed-request errors; the texts never quote the
// fields, which hold a password.
func errUserPass(detail string) error {
	return &ProtocolError{Detail: detail, Err: ErrBadUserPass}
}

// ReadUserPassRequest reads VER | ULEN | UNAME | PLEN | PASSWD (RFC 1929
// §2), 5 to 513 bytes, and no more. Errors:
//   - VER other than X'01', ULEN 0 or PLEN 0: *ProtocolError wrapping
//     ErrBadUserPass (Reply ReplySucceeded: nothing but the failure status
//     is answered). An empty username is read no further; an empty
//     password is detected after the username was read;
//   - the reader ending: its error, wrapped (io.EOF if nothing came,
//     io.ErrUnexpectedEOF within the request).
//
// Error texts never carry the fields.
func ReadUserPassRequest(r io.Reader) (UserPassRequest, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return UserPassRequest{}, fmt.Errorf("socks5: read username/password request: %w", err)
	}
	if h[0] != UserPassVersion {
		return UserPassRequest{}, errUserPass(fmt.Sprintf("username/password subnegotiation version %#02x, want 0x01", h[0]))
	}
	if h[1] == 0 {
		return UserPassRequest{}, errUserPass("empty username")
	}
	// ULEN octets of name, then PLEN: read together.
	b := make([]byte, int(h[1])+1)
	if _, err := io.ReadFull(r, b); err != nil {
		return UserPassRequest{}, fmt.Errorf("socks5: read username: %w", eofIsUnexpected(err))
	}
	plen := b[len(b)-1]
	if plen == 0 {
		return UserPassRequest{}, errUserPass("empty password")
	}
	p := make([]byte, plen)
	if _, err := io.ReadFull(r, p); err != nil {
		return UserPassRequest{}, fmt.Errorf("socks5: read password: %w", eofIsUnexpected(err))
	}
	return UserPassRequest{Username: string(b[:len(b)-1]), Password: string(p)}, nil
}

// ParseUserPassRequest decodes a request at the start of b, as
// ReadUserPassRequest does, and returns the bytes after it. A b too short
// for the request is a *ProtocolError wrapping io.ErrUnexpectedEOF.
func ParseUserPassRequest(b []byte) (UserPassRequest, []byte, error) {
	if len(b) < 2 {
		return UserPassRequest{}, nil, errTruncated("username/password request")
	}
	if b[0] != UserPassVersion {
		return UserPassRequest{}, nil, errUserPass(fmt.Sprintf("username/password subnegotiation version %#02x, want 0x01", b[0]))
	}
	ulen := int(b[1])
	if ulen == 0 {
		return UserPassRequest{}, nil, errUserPass("empty username")
	}
	if len(b) < 2+ulen+1 {
		return UserPassRequest{}, nil, errTruncated("username/password request")
	}
	plen := int(b[2+ulen])
	if plen == 0 {
		return UserPassRequest{}, nil, errUserPass("empty password")
	}
	end := 2 + ulen + 1 + plen
	if len(b) < end {
		return UserPassRequest{}, nil, errTruncated("username/password request")
	}
	return UserPassRequest{Username: string(b[2 : 2+ulen]), Password: string(b[3+ulen : end])}, b[end:], nil
}

// AppendUserPassRequest appends VER | ULEN | UNAME | PLEN | PASSWD (RFC
// 1929 §2). A field empty or longer than 255 bytes is a *ProtocolError
// wrapping ErrBadUserPass, which names the field, not its value.
func AppendUserPassRequest(dst []byte, req UserPassRequest) ([]byte, error) {
	for _, f := range []struct{ name, v string }{{"username", req.Username}, {"password", req.Password}} {
		if len(f.v) == 0 || len(f.v) > 255 {
			return dst, errUserPass(fmt.Sprintf("%s of %d bytes, want 1 to 255", f.name, len(f.v)))
		}
	}
	dst = append(dst, UserPassVersion, byte(len(req.Username)))
	dst = append(dst, req.Username...)
	dst = append(dst, byte(len(req.Password)))
	return append(dst, req.Password...), nil
}

// ReadUserPassReply reads the server's VER | STATUS (RFC 1929 §2). A
// failure status is returned as a value, not an error: the server closes
// the connection after it. VER other than X'01' is a *ProtocolError.
func ReadUserPassReply(r io.Reader) (UserPassStatus, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("socks5: read username/password reply: %w", err)
	}
	if b[0] != UserPassVersion {
		return 0, &ProtocolError{Detail: fmt.Sprintf("username/password reply version %#02x, want 0x01", b[0])}
	}
	return UserPassStatus(b[1]), nil
}

// AppendUserPassReply appends VER | STATUS (RFC 1929 §2), 2 bytes, VER
// X'01'.
func AppendUserPassReply(dst []byte, status UserPassStatus) []byte {
	return append(dst, UserPassVersion, byte(status))
}
