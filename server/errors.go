package server

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/gssocks/gssocks/socks5"
)

// replyFor maps an error dialing or resolving a destination to the RFC 1928
// reply code that describes it best.
func replyFor(err error) socks5.Reply {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return socks5.ReplySucceeded
	case errors.Is(err, errNoDestination):
		return socks5.ReplyHostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return socks5.ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return socks5.ReplyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return socks5.ReplyHostUnreachable
	case errors.As(err, &dnsErr):
		return socks5.ReplyHostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return socks5.ReplyHostUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return socks5.ReplyHostUnreachable
	}
	return socks5.ReplyGeneralFailure
}
