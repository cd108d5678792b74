package bridge

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/socks5"
)

// maxUDP bounds a datagram from either side: the largest a UDP socket
// delivers.
const maxUDP = 65535

// socksAssociate runs a UDP ASSOCIATE (RFC 1928 §7): a UDP socket for the
// local client on the address its TCP connection reached, and an
// association through the gateway. Datagrams are relayed while both the
// local control connection and the gateway's are open.
func (b *Bridge) socksAssociate(c *gateConn, want socks5.Addr) {
	r := Record{Start: time.Now(), Client: c.src, Method: "socks", Command: "udp"}
	defer func() { b.record(r) }()
	pc, err := b.listenPacket(b.ctx)
	if err != nil {
		writeReply(c, replyFor(err), socks5.Addr{})
		r.Err = err
		return
	}
	defer pc.Close()
	r.Connected, r.Level = true, pc.Level()
	local := addrPort(c.LocalAddr())
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		writeReply(c, socks5.ReplyGeneralFailure, socks5.Addr{})
		r.Err = err
		return
	}
	defer udp.Close()
	if err := writeReply(c, socks5.ReplySucceeded, socks5.AddrFromAddrPort(addrPort(udp.LocalAddr()))); err != nil {
		r.Err = err
		return
	}
	a := &association{b: b, udp: udp, pc: pc, clientIP: c.src.Addr()}
	// RFC 1928 §7: the request names where the client will send from; a
	// zero address or port means it does not know yet, and the first
	// datagram from the client's host fixes it.
	if want.Host == "" && want.IP.IsValid() && !want.IP.IsUnspecified() && want.Port != 0 {
		a.peer = netip.AddrPortFrom(want.IP.Unmap(), want.Port)
	}
	done := make(chan struct{}, 3)
	go func() { a.up(); done <- struct{}{} }()
	go func() { a.down(); done <- struct{}{} }()
	// The association lives as long as the control connection; nothing
	// more is expected on it.
	go func() { io.Copy(io.Discard, io.LimitReader(c, 1<<20)); done <- struct{}{} }()
	<-done
	c.Close()
	udp.Close()
	pc.Close()
	<-done
	<-done
	r.Up, r.Down, r.Dest = a.nUp.Load(), a.nDown.Load(), a.firstDest()
}

type association struct {
	b        *Bridge
	udp      *net.UDPConn
	pc       *client.PacketConn
	clientIP netip.Addr

	mu    sync.Mutex
	peer  netip.AddrPort // the client's UDP address, once known
	first string         // the first destination

	nUp, nDown atomic.Int64
}

func (a *association) firstDest() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first
}

// up relays datagrams from the local client to the gateway. Datagrams
// from any other address, fragments and malformed headers are dropped
// (§7 lets a relay drop what it cannot handle).
func (a *association) up() {
	buf := make([]byte, maxUDP)
	for {
		n, from, err := a.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		a.mu.Lock()
		if !a.peer.IsValid() && from.Addr() == a.clientIP {
			a.peer = from
		}
		ok := from == a.peer
		a.mu.Unlock()
		if !ok {
			a.b.log.Debug("UDP datagram dropped: not from the associated client", "from", from.String())
			continue
		}
		dest, data, err := socks5.ParseUDPHeader(buf[:n])
		if err != nil {
			a.b.log.Debug("UDP datagram dropped", "from", from.String(), "error", err)
			continue
		}
		a.mu.Lock()
		if a.first == "" {
			a.first = dest.String()
		}
		a.mu.Unlock()
		var to net.Addr = client.DomainAddr{Host: dest.Host, Port: dest.Port}
		if dest.Host == "" {
			to = net.UDPAddrFromAddrPort(netip.AddrPortFrom(dest.IP, dest.Port))
		}
		if _, err := a.pc.WriteTo(data, to); err != nil {
			if errors.Is(err, client.ErrAssociationEnded) || errors.Is(err, net.ErrClosed) {
				return
			}
			a.b.log.Debug("UDP datagram to the gateway", "dest", dest.String(), "error", err)
			continue
		}
		a.nUp.Add(int64(len(data)))
	}
}

// down relays datagrams from the gateway to the local client, each with
// the header naming its source.
func (a *association) down() {
	buf := make([]byte, maxUDP)
	out := make([]byte, 0, socks5.MaxAddrLen+3+maxUDP)
	for {
		n, from, err := a.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, client.ErrAssociationEnded) || errors.Is(err, net.ErrClosed) {
				return
			}
			// A datagram that failed its protection check: the
			// association goes on.
			a.b.log.Debug("UDP datagram from the gateway dropped", "error", err)
			continue
		}
		var src socks5.Addr
		switch f := from.(type) {
		case *net.UDPAddr:
			src = socks5.AddrFromAddrPort(f.AddrPort())
		case client.DomainAddr:
			src = socks5.Addr{Host: f.Host, Port: f.Port}
		default:
			continue
		}
		a.mu.Lock()
		peer := a.peer
		a.mu.Unlock()
		if !peer.IsValid() {
			continue // the client has not sent yet: nowhere to deliver
		}
		msg, err := socks5.AppendUDPHeader(out[:0], src)
		if err != nil {
			continue
		}
		msg = append(msg, buf[:n]...)
		if _, err := a.udp.WriteToUDPAddrPort(msg, peer); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		a.nDown.Add(int64(n))
	}
}
