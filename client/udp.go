package client

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
)

// Association is a UDP ASSOCIATE: datagrams to and from destinations
// through the gateway's relay, protected like the session.
type Association struct {
	s     *Session
	udp   *net.UDPConn
	relay netip.AddrPort
	dgram *encap.Datagram
	buf   []byte
}

// Associate asks for a UDP relay; local is the socket the client sends
// from (its address is told to the gateway).
func (s *Session) Associate(local *net.UDPConn) (*Association, error) {
	la := local.LocalAddr().(*net.UDPAddr).AddrPort()
	bnd, err := s.Request(socks5.CmdUDPAssociate, socks5.AddrFromAddrPort(la))
	if err != nil {
		return nil, err
	}
	if !bnd.IP.IsValid() {
		return nil, fmt.Errorf("client: relay address %s", bnd)
	}
	a := &Association{s: s, udp: local, relay: netip.AddrPortFrom(bnd.IP, bnd.Port)}
	if s.Level != encap.LevelClear {
		if a.dgram, err = encap.NewDatagram(s.Context, s.Level); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Relay is the gateway's relay address.
func (a *Association) Relay() netip.AddrPort { return a.relay }

// WriteTo sends p to dest through the relay.
func (a *Association) WriteTo(p []byte, dest socks5.Addr) error {
	msg, err := socks5.AppendUDPHeader(nil, dest)
	if err != nil {
		return fmt.Errorf("client: datagram: %w", err)
	}
	msg = append(msg, p...)
	if a.dgram != nil {
		if msg, err = a.dgram.Seal(nil, msg); err != nil {
			return err
		}
	}
	_, err = a.udp.WriteToUDPAddrPort(msg, a.relay)
	return err
}

// ReadFrom receives one datagram relayed from a destination.
func (a *Association) ReadFrom(p []byte) (int, socks5.Addr, error) {
	if a.buf == nil {
		a.buf = make([]byte, 64<<10+128)
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
				return 0, socks5.Addr{}, err
			}
		}
		src, data, err := socks5.ParseUDPHeader(pkt)
		if err != nil {
			return 0, socks5.Addr{}, fmt.Errorf("%w: %v", ErrNoDatagram, err)
		}
		return copy(p, data), src, nil
	}
}
