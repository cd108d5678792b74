package gssapi

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
)

var aesEnctypes = []int32{EnctypeAES128SHA1, EnctypeAES256SHA1, EnctypeAES128SHA256, EnctypeAES256SHA384}

// testPair returns two ends of a context over a random key, as if
// established with (or without) an acceptor subkey.
func testPair(t testing.TB, enctype int32, acceptorSubkey bool) (ini, acc *Context, key []byte) {
	t.Helper()
	p, err := lookupProfile(enctype, "test")
	if err != nil {
		t.Fatal(err)
	}
	key = make([]byte, p.keyLen)
	rand.Read(key)
	ini, err = newContext(true, key, enctype, "test", 1000, 5000)
	if err != nil {
		t.Fatal(err)
	}
	acc, err = newContext(false, key, enctype, "test", 5000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if acceptorSubkey {
		ini.keyFlag, acc.keyFlag = tokFlagAcceptorSubkey, tokFlagAcceptorSubkey
	}
	return ini, acc, key
}

var wrapSizes = []int{0, 1, 15, 16, 17, 31, 32, 33, 4096, 65471, 65503}

func TestWrapRoundTrip(t *testing.T) {
	for _, et := range aesEnctypes {
		for _, conf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/conf=%t", EnctypeName(et), conf), func(t *testing.T) {
				ini, acc, _ := testPair(t, et, true)
				for _, n := range wrapSizes {
					msg := make([]byte, n)
					rand.Read(msg)
					for _, dir := range []struct{ from, to *Context }{{ini, acc}, {acc, ini}} {
						tok, err := dir.from.Wrap(nil, msg, conf)
						if err != nil {
							t.Fatal(err)
						}
						if want := n + dir.from.WrapOverhead(conf); len(tok) != want {
							t.Fatalf("size %d: token %d bytes, want %d", n, len(tok), want)
						}
						got, sealed, err := dir.to.Unwrap(nil, tok)
						if err != nil {
							t.Fatalf("size %d: %v", n, err)
						}
						if sealed != conf || !bytes.Equal(got, msg) {
							t.Fatalf("size %d: sealed=%t, message differs", n, sealed)
						}
					}
				}
			})
		}
	}
}

// TestWrapAgainstGokrb5 checks our CTS and MAC layout against gokrb5's
// independent RFC 3961 implementation: a sealed token body is exactly
// gokrb5's EncryptMessage output for confounder||msg||header, and an
// unsealed token's checksum is gokrb5's checksum over msg||header.
func TestWrapAgainstGokrb5(t *testing.T) {
	for _, et := range aesEnctypes {
		t.Run(EnctypeName(et), func(t *testing.T) {
			ini, _, key := testPair(t, et, false)
			e, err := krbcrypto.GetEtype(et)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range wrapSizes {
				msg := make([]byte, n)
				rand.Read(msg)
				tok, err := ini.Wrap(nil, msg, true)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := e.DecryptMessage(key, tok[wrapHeaderLen:], usageInitiatorSeal)
				if err != nil {
					t.Fatalf("size %d: gokrb5 cannot decrypt our sealed token: %v", n, err)
				}
				if want := append(slices.Clone(msg), tok[:wrapHeaderLen]...); !bytes.Equal(plain, want) {
					t.Fatalf("size %d: gokrb5 decrypts to a different plaintext", n)
				}
				tok, err = ini.Wrap(nil, msg, false)
				if err != nil {
					t.Fatal(err)
				}
				hdr := slices.Clone(tok[:wrapHeaderLen])
				clear(hdr[4:8])
				data := append(slices.Clone(msg), hdr...)
				if !e.VerifyChecksum(key, data, tok[wrapHeaderLen+n:], usageInitiatorSeal) {
					t.Fatalf("size %d: gokrb5 rejects our integrity checksum", n)
				}
			}
		})
	}
}

// rotateRight applies an RRC as Windows does (RFC 4121 §4.2.5).
func rotateRight(tok []byte, rrc int) []byte {
	out := slices.Clone(tok)
	body := out[wrapHeaderLen:]
	r := rrc % len(body)
	copy(body, append(slices.Clone(tok[len(tok)-r:]), tok[wrapHeaderLen:len(tok)-r]...))
	binary.BigEndian.PutUint16(out[6:], uint16(rrc))
	return out
}

func TestUnwrapRRC(t *testing.T) {
	for _, et := range aesEnctypes {
		for _, conf := range []bool{false, true} {
			ini, acc, _ := testPair(t, et, true)
			for _, rrc := range []int{12, 16, 24, 28, 1000} {
				msg := []byte("rotated by the acceptor's peer")
				tok, _ := ini.Wrap(nil, msg, conf)
				got, _, err := acc.Unwrap(nil, rotateRight(tok, rrc))
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%s conf=%t RRC %d: %v", EnctypeName(et), conf, rrc, err)
				}
			}
		}
	}
}

func TestUnwrapRefusals(t *testing.T) {
	for _, et := range aesEnctypes {
		for _, conf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/conf=%t", EnctypeName(et), conf), func(t *testing.T) {
				testUnwrapRefusals(t, et, conf)
			})
		}
	}
}

func testUnwrapRefusals(t *testing.T, et int32, conf bool) {
	msg := []byte("GET / HTTP/1.1\r\n\r\n")
	// refused checks that the receiver refuses the mangled token with want,
	// and that the refusal left its sequence state alone: a valid token
	// with the same sequence number is accepted afterwards.
	refused := func(name string, mangle func([]byte) []byte, want error) {
		t.Helper()
		ini, acc, _ := testPair(t, et, true)
		tok, err := ini.Wrap(nil, msg, conf)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := acc.Unwrap(nil, mangle(tok)); err == nil || (want != errAny && !errors.Is(err, want)) {
			t.Fatalf("%s: got %v (%d bytes out), want %v", name, err, len(got), want)
		}
		ini.send.seq--
		tok, _ = ini.Wrap(nil, msg, conf)
		if got, _, err := acc.Unwrap(nil, tok); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: valid token after the refusal: %v", name, err)
		}
	}
	// Every bit of the token but the RRC field matters.
	ini, _, _ := testPair(t, et, true)
	base, _ := ini.Wrap(nil, msg, conf)
	for i := range base {
		if i == 6 || i == 7 {
			continue
		}
		for bit := range 8 {
			refused(fmt.Sprintf("bit %d of byte %d", bit, i), func(tok []byte) []byte {
				tok[i] ^= 1 << bit
				return tok
			}, errAny)
		}
	}
	refused("no acceptor-subkey flag", func(tok []byte) []byte { tok[2] &^= tokFlagAcceptorSubkey; return tok }, ErrWrongKey)
	refused("wrong direction", func(tok []byte) []byte { tok[2] |= tokFlagSentByAcceptor; return tok }, ErrWrongDirection)
	refused("truncated", func(tok []byte) []byte { return tok[:wrapHeaderLen+3] }, ErrDefectiveToken)
	refused("header only", func(tok []byte) []byte { return tok[:wrapHeaderLen] }, ErrDefectiveToken)
	refused("one byte", func(tok []byte) []byte { return tok[:1] }, ErrDefectiveToken)
	refused("one byte short", func(tok []byte) []byte { return tok[:len(tok)-1] }, errAny)
	refused("RFC 1964 token", func(tok []byte) []byte { tok[0], tok[1] = 0x02, 0x01; return tok }, ErrDefectiveToken)
	refused("MIC given to Unwrap", func([]byte) []byte {
		i2, _, _ := testPair(t, et, true)
		return i2.GetMIC(nil, msg)
	}, ErrDefectiveToken)

	// Sequence: a skipped number, a replay.
	ini, acc, _ := testPair(t, et, true)
	t1, _ := ini.Wrap(nil, msg, conf)
	t2, _ := ini.Wrap(nil, msg, conf)
	if _, _, err := acc.Unwrap(nil, slices.Clone(t2)); !errors.Is(err, ErrGapToken) {
		t.Fatalf("skipped sequence number: %v", err)
	}
	if _, _, err := acc.Unwrap(nil, slices.Clone(t1)); err != nil {
		t.Fatalf("in-order token after a refused gap: %v", err)
	}
	if _, _, err := acc.Unwrap(nil, slices.Clone(t2)); err != nil {
		t.Fatalf("next token: %v", err)
	}
	if _, _, err := acc.Unwrap(nil, t1); !errors.Is(err, ErrUnseqToken) {
		t.Fatalf("replayed token: %v", err)
	}
}

// errAny matches any non-nil error in refusal tables.
var errAny = errors.New("any error")

func TestShortCiphertext(t *testing.T) {
	// Sealed tokens whose ciphertext cannot hold confounder, header and
	// checksum: refused before any decryption, never a panic.
	ini, acc, _ := testPair(t, EnctypeAES256SHA1, false)
	tok, _ := ini.Wrap(nil, []byte("x"), true)
	for n := wrapHeaderLen; n < len(tok); n++ {
		if _, _, err := acc.Unwrap(nil, slices.Clone(tok[:n])); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

func TestMIC(t *testing.T) {
	for _, et := range aesEnctypes {
		ini, acc, _ := testPair(t, et, true)
		msg := []byte("signed")
		for _, d := range []struct{ from, to *Context }{{ini, acc}, {acc, ini}} {
			mic := d.from.GetMIC(nil, msg)
			if err := d.to.VerifyMIC(msg, mic); err != nil {
				t.Fatalf("%s: %v", EnctypeName(et), err)
			}
			if err := d.to.VerifyMIC(msg, mic); !errors.Is(err, ErrUnseqToken) {
				t.Fatalf("%s: replayed MIC: %v", EnctypeName(et), err)
			}
			mic = d.from.GetMIC(nil, msg)
			if err := d.to.VerifyMIC([]byte("signeD"), mic); !errors.Is(err, ErrBadIntegrity) {
				t.Fatalf("%s: MIC over other data: %v", EnctypeName(et), err)
			}
		}
	}
}

func TestDatagramWindow(t *testing.T) {
	ini, acc, _ := testPair(t, EnctypeAES128SHA256, true)
	// The control stream consumes two tokens first.
	for range 2 {
		tok, _ := ini.Wrap(nil, []byte("ctl"), true)
		if _, _, err := acc.Unwrap(nil, tok); err != nil {
			t.Fatal(err)
		}
	}
	acc.SetDatagramMode()
	toks := make([][]byte, 100)
	for i := range toks {
		toks[i], _ = ini.Wrap(nil, []byte{byte(i)}, true)
	}
	unwrap := func(i int) error { _, _, err := acc.Unwrap(nil, slices.Clone(toks[i])); return err }
	for _, i := range []int{1, 0, 5, 3} { // reordered and lost
		if err := unwrap(i); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	if err := unwrap(3); !errors.Is(err, ErrDuplicateToken) {
		t.Fatalf("replayed datagram: %v", err)
	}
	if err := unwrap(99); err != nil {
		t.Fatal(err)
	}
	if err := unwrap(2); !errors.Is(err, ErrOldToken) {
		t.Fatalf("datagram beyond the window: %v", err)
	}
	if err := unwrap(60); err != nil {
		t.Fatalf("late datagram within the window: %v", err)
	}
}

func TestRecvSeqWindowEdges(t *testing.T) {
	s := recvSeq{next: 10}
	s.toDatagram()
	for _, c := range []struct {
		seq  uint64
		want error
	}{{9, ErrDuplicateToken}, {10, nil}, {10, ErrDuplicateToken}, {200, nil}, {137, nil}, {136, ErrOldToken}, {199, nil}, {138, nil}, {201, nil}} {
		if err := s.check(c.seq); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Fatalf("seq %d: %v, want %v", c.seq, err, c.want)
		}
	}
}

// TestDeriveKeyMatchesGokrb5: our tabulated RFC 3961 DK equals gokrb5's.
func TestDeriveKeyMatchesGokrb5(t *testing.T) {
	for _, et := range aesEnctypes {
		p, _ := lookupProfile(et, "test")
		base := make([]byte, p.keyLen)
		rand.Read(base)
		for _, u := range []uint32{2, 3, 11, 12, 22, 23, 24, 25, 1000} {
			for _, suffix := range []byte{0x99, 0xAA, 0x55} {
				ours := p.deriveKey(p.baseCipher(base), base, u, suffix)
				theirs, err := p.etype.DeriveKey(base, []byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u), suffix})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ours, theirs) {
					t.Fatalf("%s usage %d/%#x: DK differs", EnctypeName(et), u, suffix)
				}
			}
		}
	}
}

// TestEncryptMessageMatchesGokrb5: our RFC 3961 encryption and gokrb5's
// decrypt each other.
func TestEncryptMessageMatchesGokrb5(t *testing.T) {
	for _, et := range aesEnctypes {
		p, _ := lookupProfile(et, "test")
		key := make([]byte, p.keyLen)
		rand.Read(key)
		enc, _ := newSealKeys(p, key, 12, false)
		dec, _ := newSealKeys(p, key, 12, true)
		for _, n := range []int{0, 1, 16, 17, 100} {
			plain := make([]byte, n)
			rand.Read(plain)
			ct, _ := enc.encryptMessage(plain)
			got, err := p.etype.DecryptMessage(key, ct, 12)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s %d: gokrb5 decrypt of ours: %v", EnctypeName(et), n, err)
			}
			_, ct2, _ := p.etype.EncryptMessage(key, plain, 12)
			got, err = dec.decryptMessage(ct2)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s %d: our decrypt of gokrb5's: %v", EnctypeName(et), n, err)
			}
		}
	}
}

// TestKeysDerivedOnFirstUse pins which per-message keys each kind of use
// builds (see usageKeys): none at establishment; Kc of the seal usage for
// unsealed Wrap tokens only; Ke and Ki for sealed ones, which drop that
// Kc; the sign usage's Kc for MIC tokens only. Keys dropped or never
// built are derived when a token needs them, and every token still
// verifies on the other side.
func TestKeysDerivedOnFirstUse(t *testing.T) {
	type built struct{ seal, kc, mic bool }
	have := func(k *usageKeys) built {
		if (k.cbc == nil) != (k.ki == nil) {
			t.Fatal("Ke and Ki built apart")
		}
		return built{k.cbc != nil, k.kc != nil, k.kcMIC != nil}
	}
	for _, et := range aesEnctypes {
		for _, c := range []struct {
			use  string
			want built
		}{
			{"established", built{}},
			{"integrity", built{kc: true}},
			{"confidentiality", built{seal: true}},
			{"mic", built{mic: true}},
		} {
			t.Run(EnctypeName(et)+"/"+c.use, func(t *testing.T) {
				ini, acc, _ := testPair(t, et, true)
				contextUses[c.use](t, ini, acc)
				for _, k := range []*usageKeys{&ini.send.keys, &ini.recv.keys, &acc.send.keys, &acc.recv.keys} {
					if got := have(k); got != c.want {
						t.Fatalf("built %+v, want %+v", got, c.want)
					}
				}
				// Any other kind of token still works, in any order.
				exchangeTokens(t, ini, acc, false, false)
				exchangeTokens(t, ini, acc, true, false)
				exchangeTokens(t, ini, acc, false, true)
				exchangeTokens(t, ini, acc, false, false)
				if got := have(&acc.send.keys); got != (built{true, true, true}) {
					t.Fatalf("after every kind: built %+v", got)
				}
			})
		}
	}
}
