package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
)

// maxDatagram bounds a received datagram: a 65535-byte token and its
// 4-byte RFC 1961 header.
const maxDatagram = 4 + 65535

// Association is a UDP ASSOCIATE: datagrams to and from destinations
// through the gateway's relay, protected like the session.
type Association struct {
	s     *Session
	udp   *net.UDPConn
	relay netip.AddrPort
	dgram *encap.Datagram

	rmu sync.Mutex
	buf []byte
}

// Associate asks for a UDP relay; local is the socket the client sends
// from (its address is told to the gateway).
func (s *Session) Associate(local *net.UDPConn) (*Association, error) {
	la := local.LocalAddr().(*net.UDPAddr).AddrPort()
	bnd, err := s.Request(socks5.CmdUDPAssociate, socks5.AddrFromAddrPort(la))
	if err != nil {
		return nil, err
	}
	relay, err := relayAddr(bnd, s.Conn)
	if err != nil {
		return nil, err
	}
	a := &Association{s: s, udp: local, relay: relay}
	if s.Level != encap.LevelClear {
		if a.dgram, err = encap.NewDatagram(s.Context, s.Level); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// relayAddr is the relay's address from the reply; an unspecified
// address (0.0.0.0, which Dante may answer) means the gateway's.
func relayAddr(bnd socks5.Addr, ctl net.Conn) (netip.AddrPort, error) {
	if !bnd.IP.IsValid() || bnd.Port == 0 {
		return netip.AddrPort{}, fmt.Errorf("client: the gateway answered the UDP ASSOCIATE with relay address %s", bnd)
	}
	ip := bnd.IP.Unmap()
	if ip.IsUnspecified() {
		if ta, ok := ctl.RemoteAddr().(*net.TCPAddr); ok {
			ip = ta.AddrPort().Addr().Unmap()
		}
	}
	return netip.AddrPortFrom(ip, bnd.Port), nil
}

// Relay is the gateway's relay address.
func (a *Association) Relay() netip.AddrPort { return a.relay }

// WriteTo sends p to dest through the relay.
func (a *Association) WriteTo(p []byte, dest socks5.Addr) error {
	msg, err := socks5.AppendUDPHeader(make([]byte, 0, 32+len(p)), dest)
	if err != nil {
		return fmt.Errorf("client: datagram: %w", err)
	}
	msg = append(msg, p...)
	if a.dgram != nil {
		if msg, err = a.dgram.Seal(nil, msg); err != nil {
			return fmt.Errorf("client: datagram: %w", err)
		}
	}
	_, err = a.udp.WriteToUDPAddrPort(msg, a.relay)
	return err
}

// ReadFrom receives one datagram relayed from a destination. Datagrams
// from elsewhere than the relay are dropped; a relayed datagram that fails
// its protection check is an error (the association goes on).
func (a *Association) ReadFrom(p []byte) (int, socks5.Addr, error) {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.buf == nil {
		a.buf = make([]byte, maxDatagram)
	}
	for {
		n, from, err := a.udp.ReadFromUDPAddrPort(a.buf)
		if err != nil {
			return 0, socks5.Addr{}, err
		}
		if from.Addr().Unmap() != a.relay.Addr() || from.Port() != a.relay.Port() {
			continue // not from the relay
		}
		pkt := a.buf[:n]
		if a.dgram != nil {
			if pkt, err = a.dgram.Open(pkt); err != nil {
				return 0, socks5.Addr{}, fmt.Errorf("client: datagram from the relay: %w", err)
			}
		}
		src, data, err := socks5.ParseUDPHeader(pkt)
		if err != nil {
			return 0, socks5.Addr{}, fmt.Errorf("%w: %v", ErrNoDatagram, err)
		}
		return copy(p, data), src, nil
	}
}

// PacketConn is a net.PacketConn through a UDP association (RFC 1928 §7,
// RFC 1961 §5): each WriteTo is one datagram to a destination through the
// gateway's relay, each ReadFrom one datagram back, encapsulated at the
// session's level. The association lives as long as its control
// connection: when the gateway closes it, reads and writes fail with
// ErrAssociationEnded. Close ends both. Safe for concurrent use.
type PacketConn struct {
	a     *Association
	ended chan struct{}
	once  sync.Once
}

// DomainAddr is the source of a datagram relayed from a destination the
// gateway named by host name, and a destination WriteTo accepts.
type DomainAddr struct {
	Host string
	Port uint16
}

// Network is "udp".
func (DomainAddr) Network() string { return "udp" }

func (a DomainAddr) String() string { return net.JoinHostPort(a.Host, fmt.Sprint(a.Port)) }

// ListenPacket opens a UDP association through the gateway. The local
// socket is bound on the address the gateway connection leaves from.
//
// Errors are those of DialContext.
func (d *Dialer) ListenPacket(ctx context.Context) (*PacketConn, error) {
	s, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	la, _ := s.Conn.LocalAddr().(*net.TCPAddr)
	var local net.UDPAddr
	if la != nil {
		local.IP = la.IP
	}
	udp, err := net.ListenUDP("udp", &local)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("client: UDP socket: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.SetDeadline(time.Now()) })
	a, err := s.Associate(udp)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		udp.Close()
		s.Close()
		return nil, err
	}
	pc := &PacketConn{a: a, ended: make(chan struct{})}
	go pc.watch()
	return pc, nil
}

// watch ends the association when the control connection ends. Nothing
// more is expected on it; anything the gateway sends is discarded.
func (pc *PacketConn) watch() {
	io.Copy(io.Discard, pc.a.s.rw)
	pc.end()
}

func (pc *PacketConn) end() {
	pc.once.Do(func() {
		close(pc.ended)
		pc.a.udp.Close()
		pc.a.s.Close()
	})
}

func (pc *PacketConn) endedErr(err error) error {
	select {
	case <-pc.ended:
		return ErrAssociationEnded
	default:
		return err
	}
}

// ReadFrom reads one datagram; addr is a *net.UDPAddr, or a DomainAddr
// when the gateway named the source by host name.
func (pc *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, src, err := pc.a.ReadFrom(p)
	if err != nil {
		return 0, nil, pc.endedErr(err)
	}
	if src.IP.IsValid() {
		return n, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src.IP.Unmap(), src.Port)), nil
	}
	return n, DomainAddr{Host: src.Host, Port: src.Port}, nil
}

// WriteTo sends p as one datagram to addr: a *net.UDPAddr, a DomainAddr,
// or any net.Addr whose String is "host:port".
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var dest socks5.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		dest = socks5.AddrFromAddrPort(a.AddrPort())
	default:
		var err error
		if dest, err = socks5.ParseHostPort(addr.String()); err != nil {
			return 0, fmt.Errorf("client: datagram destination: %w", err)
		}
	}
	select {
	case <-pc.ended:
		return 0, ErrAssociationEnded
	default:
	}
	if err := pc.a.WriteTo(p, dest); err != nil {
		return 0, pc.endedErr(err)
	}
	return len(p), nil
}

// Close ends the association.
func (pc *PacketConn) Close() error {
	pc.end()
	return nil
}

// LocalAddr is the local UDP socket's address.
func (pc *PacketConn) LocalAddr() net.Addr { return pc.a.udp.LocalAddr() }

// Relay is the gateway's relay address.
func (pc *PacketConn) Relay() netip.AddrPort { return pc.a.relay }

// Level is the association's protection level.
func (pc *PacketConn) Level() encap.Level { return pc.a.s.Level }

// SetDeadline sets the UDP socket's deadlines.
func (pc *PacketConn) SetDeadline(t time.Time) error { return pc.a.udp.SetDeadline(t) }

// SetReadDeadline sets the UDP socket's read deadline.
func (pc *PacketConn) SetReadDeadline(t time.Time) error { return pc.a.udp.SetReadDeadline(t) }

// SetWriteDeadline sets the UDP socket's write deadline.
func (pc *PacketConn) SetWriteDeadline(t time.Time) error { return pc.a.udp.SetWriteDeadline(t) }

var _ net.PacketConn = (*PacketConn)(nil)
