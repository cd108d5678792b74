package bridge

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/socks5"
)

// serveSOCKS accepts SOCKS5 clients until the listener closes.
func (b *Bridge) serveSOCKS(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				b.log.Error("SOCKS listener failed", "error", err)
			}
			return
		}
		if !b.enter() {
			c.Close()
			return
		}
		go func() {
			defer b.leave()
			defer c.Close()
			b.socksSession(c.(*gateConn))
		}()
	}
}

// socksSession runs one local SOCKS5 session: the greeting (method X'00'
// only), the request, then CONNECT or UDP ASSOCIATE through the gateway.
func (b *Bridge) socksSession(c *gateConn) {
	c.SetDeadline(time.Now().Add(b.opts.HandshakeTimeout))
	methods, err := socks5.ReadGreeting(c)
	if err != nil {
		b.log.Debug("SOCKS greeting", "client", c.src.String(), "error", err)
		return
	}
	if !slices.Contains(methods, socks5.MethodNoAuth) {
		// RFC 1928 §3: X'FF', then the client closes.
		c.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAcceptable))
		b.log.Debug("SOCKS client offers no method the bridge accepts (it wants X'00')", "client", c.src.String(), "methods", fmt.Sprint(methods))
		return
	}
	if _, err := c.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAuth)); err != nil {
		return
	}
	req, err := socks5.ReadRequest(c)
	if err != nil {
		var pe *socks5.ProtocolError
		if errors.As(err, &pe) && pe.Reply != socks5.ReplySucceeded {
			writeReply(c, pe.Reply, socks5.Addr{})
		}
		b.log.Debug("SOCKS request", "client", c.src.String(), "error", err)
		return
	}
	c.SetDeadline(time.Time{})
	switch req.Command {
	case socks5.CmdConnect:
		b.socksConnect(c, req.Dest)
	case socks5.CmdUDPAssociate:
		b.socksAssociate(c, req.Dest)
	default:
		writeReply(c, socks5.ReplyCommandNotSupported, socks5.Addr{})
		b.record(Record{Start: time.Now(), Client: c.src, Method: "socks", Command: req.Command.String(), Dest: req.Dest.String(),
			Err: fmt.Errorf("bridge: SOCKS %s is not supported (CONNECT and UDP ASSOCIATE are)", req.Command)})
	}
}

func (b *Bridge) socksConnect(c *gateConn, dest socks5.Addr) {
	r := Record{Start: time.Now(), Client: c.src, Method: "socks", Command: "connect", Dest: dest.String()}
	defer func() { b.record(r) }()
	g, lvl, err := b.dial(b.ctx, dest)
	if err != nil {
		writeReply(c, replyFor(err), socks5.Addr{})
		r.Err = err
		return
	}
	defer g.Close()
	r.Connected, r.Level = true, lvl
	// BND.ADDR is the gateway's outgoing address, which the client
	// library does not keep and which would mean nothing here: send the
	// zero address (RFC 1928 §6 allows it).
	if err := writeReply(c, socks5.ReplySucceeded, socks5.Addr{}); err != nil {
		r.Err = err
		return
	}
	r.Up, r.Down, r.Err = b.relay(c, g)
}

// replyFor is the SOCKS reply for a failed dial: the gateway's own reply
// code when it refused, else general failure.
func replyFor(err error) socks5.Reply {
	var re *client.ReplyError
	if errors.As(err, &re) {
		return re.Reply
	}
	return socks5.ReplyGeneralFailure
}

func writeReply(c net.Conn, rep socks5.Reply, bnd socks5.Addr) error {
	msg, err := socks5.AppendReply(nil, rep, bnd)
	if err != nil {
		return err
	}
	_, err = c.Write(msg)
	return err
}
