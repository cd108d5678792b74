package server

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// replyFor maps an error dialing or resolving a destination to the RFC 1928
// reply code that describes it best.
func replyFor(err error) Reply {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return ReplySucceeded
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return ReplyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return ReplyHostUnreachable
	case errors.As(err, &dnsErr):
		return ReplyHostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ReplyHostUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReplyHostUnreachable
	}
	return ReplyGeneralFailure
}
