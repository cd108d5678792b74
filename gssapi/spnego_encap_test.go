package gssapi_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/testenv/golden"
)

// TestSPNEGONTLMOnlyAborts: an RFC 1961 server that hands a NegTokenInit
// offering only NTLM to the acceptor answers with the abort message
// (01 ff) and no token, and the error says why.
func TestSPNEGONTLMOnlyAborts(t *testing.T) {
	kt, err := gssapi.ParseKeytab(golden.Keytab())
	if err != nil {
		t.Fatal(err)
	}
	acc, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{Keytab: kt})
	if err != nil {
		t.Fatal(err)
	}
	// 60 len SPNEGO a0 { 30 { a0 { 30 { NTLMSSP OID } } a2 { 04 "NTLMSSP\0..." } } }
	ntlm := []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}
	mechToken := []byte("NTLMSSP\x00\x01\x00\x00\x00")
	tlv := func(tag byte, b ...byte) []byte { return append([]byte{tag, byte(len(b))}, b...) }
	seq := append(tlv(0xa0, tlv(0x30, ntlm...)...), tlv(0xa2, tlv(0x04, mechToken...)...)...)
	spnego := []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
	tok := tlv(0x60, append(spnego, tlv(0xa0, tlv(0x30, seq...)...)...)...)

	srv, cli := net.Pipe()
	defer cli.Close()
	done := make(chan error, 1)
	go func() {
		defer srv.Close()
		_, err := encap.AcceptContext(srv, acc, netip.MustParseAddr("127.0.0.1"))
		done <- err
	}()
	if err := encap.WriteMessage(cli, encap.MsgAuth, tok); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(cli)
	if err != nil {
		t.Fatal(err)
	}
	if string(answer) != "\x01\xff" {
		t.Fatalf("server answered %x, want the abort 01ff", answer)
	}
	if err := <-done; !errors.Is(err, gssapi.ErrNoKrb5Mech) {
		t.Fatalf("AcceptContext: %v", err)
	}
}
