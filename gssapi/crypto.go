package gssapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc3961"
)

// Sizes of the RFC 4121 token fields and the RFC 3961 key derivation input.
const (
	confounderLen            = aes.BlockSize // RFC 3962 §6, RFC 8009 §5
	wrapHeaderLen            = 16            // RFC 4121 §4.2.6.2
	micHeaderLen             = 16            // RFC 4121 §4.2.6.1
	maxChecksumLen           = 24
	keyDerivationConstantLen = 5
)

// profile is the RFC 3961 simplified profile parameters of one AES enctype.
type profile struct {
	id      int32
	keyLen  int // protocol key length in bytes
	macLen  int // truncated HMAC output, bytes (= checksum length)
	newHash func() hash.Hash
	// rfc8009: the MAC is over IV||ciphertext (encrypt-then-MAC) and keys
	// come from KDF-HMAC-SHA2; otherwise RFC 3962 (MAC over plaintext,
	// DK with n-fold).
	rfc8009 bool
	etype   etype.EType
}

// profiles are the four AES profiles, indexed by aesProfileIndex.
// Read-only after package initialisation: contexts point into it.
var profiles = [...]profile{
	{id: EnctypeAES128SHA1, macLen: 12, newHash: sha1.New, etype: krbcrypto.Aes128CtsHmacSha96{}},
	{id: EnctypeAES256SHA1, macLen: 12, newHash: sha1.New, etype: krbcrypto.Aes256CtsHmacSha96{}},
	{id: EnctypeAES128SHA256, macLen: 16, newHash: sha256.New, rfc8009: true, etype: krbcrypto.Aes128CtsHmacSha256128{}},
	{id: EnctypeAES256SHA384, macLen: 24, newHash: sha512.New384, rfc8009: true, etype: krbcrypto.Aes256CtsHmacSha384192{}},
}

func init() {
	for i := range profiles {
		profiles[i].keyLen = EnctypeKeyLen(profiles[i].id)
	}
}

// lookupProfile returns the shared, read-only profile of an AES enctype, or
// an UnsupportedEnctypeError naming role.
func lookupProfile(id int32, role string) (*profile, error) {
	for i := range profiles {
		if profiles[i].id == id {
			return &profiles[i], nil
		}
	}
	return nil, &UnsupportedEnctypeError{Enctype: id, Role: role}
}

// baseCipher is the AES key schedule of base for deriveKey (RFC 3962
// profiles; nil for RFC 8009, whose KDF is an HMAC). Building it once
// serves all derivations from one base key. base must be p.keyLen bytes:
// every caller checked it when the key entered (newContext,
// newSealKeys), so the error cannot happen.
func (p *profile) baseCipher(base []byte) cipher.Block {
	if p.rfc8009 {
		return nil
	}
	block, err := aes.NewCipher(base)
	if err != nil {
		panic(fmt.Sprintf("gssapi: unchecked %d-byte base key reached key derivation", len(base)))
	}
	return block
}

// deriveKey computes DK(base, usage || suffix) with the enctype's KDF
// (RFC 3961 §5.1 for RFC 3962 enctypes, with baseBlock from baseCipher;
// KDF-HMAC-SHA2 for RFC 8009).
func (p *profile) deriveKey(baseBlock cipher.Block, base []byte, usage uint32, suffix byte) []byte {
	var c [keyDerivationConstantLen]byte
	binary.BigEndian.PutUint32(c[:], usage)
	c[4] = suffix
	if p.rfc8009 {
		// gokrb5's RFC 8009 DeriveKey has no failure of its own.
		k, err := p.etype.DeriveKey(base, c[:])
		if err != nil || len(k) == 0 {
			panic("gssapi: RFC 8009 key derivation failed")
		}
		return k
	}
	// RFC 3961 §5.1: DK = random-to-key(DR(base, n-fold(constant))), where
	// DR chains single-block encryptions (one block of CBC-CTS with a zero
	// IV is plain AES). gokrb5 computes the n-fold bit by bit on every
	// call, half the cost of accepting a context; the folded constants
	// depend only on the usage and are tabulated.
	folded, ok := foldedConstants[c]
	if !ok {
		folded = [aes.BlockSize]byte(rfc3961.Nfold(c[:], 8*aes.BlockSize))
	}
	out := make([]byte, 0, p.keyLen+aes.BlockSize)
	for k := folded; len(out) < p.keyLen; {
		baseBlock.Encrypt(k[:], k[:])
		out = append(out, k[:]...)
	}
	return out[:p.keyLen]
}

// foldedConstants holds n-fold(usage || suffix, 128) for the key usages of
// context establishment (RFC 4120 §7.5.1: 2 ticket, 11 authenticator, 12
// AP-REP) and RFC 4121 (22-25). Read-only after package initialisation.
var foldedConstants = func() map[[keyDerivationConstantLen]byte][aes.BlockSize]byte {
	m := make(map[[keyDerivationConstantLen]byte][aes.BlockSize]byte)
	for _, u := range []uint32{2, 11, 12, usageAcceptorSeal, usageAcceptorSign, usageInitiatorSeal, usageInitiatorSign} {
		for _, suffix := range []byte{0x99, 0xAA, 0x55} {
			var c [keyDerivationConstantLen]byte
			binary.BigEndian.PutUint32(c[:], u)
			c[4] = suffix
			m[c] = [aes.BlockSize]byte(rfc3961.Nfold(c[:], 8*aes.BlockSize))
		}
	}
	return m
}()

// ivSetter is implemented by the CBC modes of crypto/cipher; it lets one
// BlockMode serve every message of a context (cipher state is reset to zero
// for each GSS token, RFC 4121 §4.2.4).
type ivSetter interface {
	cipher.BlockMode
	SetIV([]byte)
}

// usageKeys are the derived keys of one direction (RFC 4121 §2, §4.2.4):
// from the seal usage Ke and Ki for sealed Wrap tokens and Kc for the
// checksum of unsealed Wrap tokens; from the sign usage Kc for MIC tokens
// (the SIGN usages are for MIC tokens only, as MIT does).
//
// Each key is derived from base on its first use, not when the context is
// made: a session uses one kind of token for its data (sealed at
// confidentiality, unsealed at integrity, none in the clear), and an idle
// session holds its keys for as long as it lasts. Building the seal keys
// drops Kc: at confidentiality the only unsealed tokens are RFC 1961's
// protection-level exchange, before the data, and a later unsealed token
// (legal, if unusual) derives it again. Only the CBC mode of the
// direction's own operation is kept: the sending side encrypts, the
// receiving side decrypts, and single blocks go through the same mode with
// a zero IV, so no separate AES key schedule is held.
//
// Not safe for concurrent use: each direction of a context owns one and
// serialises on its own lock.
type usageKeys struct {
	p         *profile
	base      []byte // the context key (or the one-shot key), p.keyLen bytes
	sealUsage uint32
	signUsage uint32
	decrypts  bool // cbc is a CBC decrypter (receiving); else an encrypter

	cbc   ivSetter  // AES-CBC under Ke, nil until the first sealed token
	ki    hash.Hash // HMAC(Ki, seal usage): integrity of sealed Wrap tokens
	kc    hash.Hash // HMAC(Kc, seal usage): checksum of unsealed Wrap tokens
	kcMIC hash.Hash // HMAC(Kc, sign usage): checksum of MIC tokens
	// Scratch space. Slices of stack arrays passed to the cipher.BlockMode
	// and hash.Hash interfaces would escape to the heap on every message.
	sum    [64]byte
	hdr    [wrapHeaderLen]byte
	block3 [3][aes.BlockSize]byte
}

var zeroIV [aes.BlockSize]byte

// init sets k up to derive one direction's keys from base, which
// the caller checked to be p.keyLen bytes; nothing is derived yet.
func (k *usageKeys) init(p *profile, base []byte, sealUsage, signUsage uint32, decrypts bool) {
	*k = usageKeys{p: p, base: base, sealUsage: sealUsage, signUsage: signUsage, decrypts: decrypts}
}

// newSealKeys derives Ke and Ki of one usage at once: RFC 3961 encryption
// (decrypts false) or decryption of one message (tickets, authenticators,
// AP-REP).
func newSealKeys(p *profile, base []byte, usage uint32, decrypts bool) (*usageKeys, error) {
	if len(base) != p.keyLen {
		return nil, fmt.Errorf("%w: %s key is %d bytes, want %d", ErrDefectiveToken, EnctypeName(p.id), len(base), p.keyLen)
	}
	k := &usageKeys{}
	k.init(p, base, usage, 0, decrypts)
	k.sealing()
	return k, nil
}

// sealing derives Ke and Ki on first use (and drops Kc, see usageKeys).
func (k *usageKeys) sealing() {
	if k.cbc != nil {
		return
	}
	b := k.p.baseCipher(k.base)
	ke := k.p.deriveKey(b, k.base, k.sealUsage, 0xAA)
	ki := k.p.deriveKey(b, k.base, k.sealUsage, 0x55)
	block, err := aes.NewCipher(ke)
	if err != nil {
		panic("gssapi: derived Ke is not an AES key")
	}
	var mode cipher.BlockMode
	if k.decrypts {
		mode = cipher.NewCBCDecrypter(block, zeroIV[:])
	} else {
		mode = cipher.NewCBCEncrypter(block, zeroIV[:])
	}
	cbc, ok := mode.(ivSetter)
	if !ok {
		panic("gssapi: crypto/cipher CBC mode cannot reset its IV")
	}
	k.cbc, k.ki, k.kc = cbc, hmac.New(k.p.newHash, ki), nil
}

// checksum returns the truncated HMAC(Kc, a || b) of an unsealed Wrap
// token in k.sum (valid until the next call), deriving Kc on first use.
func (k *usageKeys) checksum(a, b []byte) []byte {
	if k.kc == nil {
		k.kc = hmac.New(k.p.newHash, k.p.deriveKey(k.p.baseCipher(k.base), k.base, k.sealUsage, 0x99))
	}
	return k.mac(k.kc, a, b)
}

// micChecksum is checksum for MIC tokens, under the sign usage's Kc.
func (k *usageKeys) micChecksum(a, b []byte) []byte {
	if k.kcMIC == nil {
		k.kcMIC = hmac.New(k.p.newHash, k.p.deriveKey(k.p.baseCipher(k.base), k.base, k.signUsage, 0x99))
	}
	return k.mac(k.kcMIC, a, b)
}

// encryptMessage is the RFC 3961 encryption function of the profile:
// CTS(confounder || plain) followed by the truncated HMAC.
func (k *usageKeys) encryptMessage(plain []byte) ([]byte, error) {
	out := make([]byte, confounderLen+len(plain), confounderLen+len(plain)+k.p.macLen+aes.BlockSize)
	if _, err := rand.Read(out[:confounderLen]); err != nil {
		return nil, fmt.Errorf("%w: confounder: %w", ErrFailure, err)
	}
	copy(out[confounderLen:], plain)
	var mac []byte
	if k.p.rfc8009 {
		k.encryptCTS(out)
		mac = k.integrity(out)
	} else {
		mac = k.integrity(out)
		k.encryptCTS(out)
	}
	return append(out, mac...), nil
}

// decryptMessage inverts encryptMessage; ct is overwritten.
func (k *usageKeys) decryptMessage(ct []byte) ([]byte, error) {
	n := len(ct) - k.p.macLen
	if n < confounderLen {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrDefectiveToken, len(ct))
	}
	body, mac := ct[:n], ct[n:]
	if k.p.rfc8009 && !hmac.Equal(k.integrity(body), mac) {
		return nil, ErrBadIntegrity
	}
	k.decryptCTS(body)
	if !k.p.rfc8009 && !hmac.Equal(k.integrity(body), mac) {
		return nil, ErrBadIntegrity
	}
	return body[confounderLen:], nil
}

func (k *usageKeys) mac(h hash.Hash, a, b []byte) []byte {
	h.Reset()
	h.Write(a)
	h.Write(b)
	return h.Sum(k.sum[:0])[:k.p.macLen]
}

// integrity returns the truncated HMAC(Ki, ...) of a sealed message: over the
// plaintext for RFC 3962, over IV || ciphertext for RFC 8009.
func (k *usageKeys) integrity(plainOrCipher []byte) []byte {
	k.ki.Reset()
	if k.p.rfc8009 {
		k.ki.Write(zeroIV[:])
	}
	k.ki.Write(plainOrCipher)
	return k.ki.Sum(k.sum[:0])[:k.p.macLen]
}

// encryptCTS encrypts buf in place with AES-CBC with ciphertext stealing
// (RFC 3962 §5, "CBC-CS3"), zero IV. len(buf) must be at least one block;
// cap(buf) must allow len(buf) rounded up to a whole block (scratch for the
// padded final block).
func (k *usageKeys) encryptCTS(buf []byte) {
	n := len(buf)
	k.cbc.SetIV(zeroIV[:])
	if n == aes.BlockSize {
		k.cbc.CryptBlocks(buf, buf)
		return
	}
	r := n % aes.BlockSize
	padded := buf
	if r != 0 {
		padded = buf[:n+aes.BlockSize-r]
		clear(padded[n:])
	}
	k.cbc.CryptBlocks(padded, padded)
	// Swap the last two blocks, then truncate: the penultimate block is the
	// one whose tail the final partial block stole.
	m := len(padded)
	last := &k.block3[0]
	copy(last[:], padded[m-aes.BlockSize:])
	copy(padded[m-aes.BlockSize:], padded[m-2*aes.BlockSize:m-aes.BlockSize])
	copy(padded[m-2*aes.BlockSize:], last[:])
}

// decryptCTS decrypts buf in place (inverse of encryptCTS). len(buf) >= 16.
func (k *usageKeys) decryptCTS(buf []byte) {
	n := len(buf)
	k.cbc.SetIV(zeroIV[:])
	if n == aes.BlockSize {
		k.cbc.CryptBlocks(buf, buf)
		return
	}
	r := n % aes.BlockSize
	if r == 0 {
		r = aes.BlockSize
	}
	// buf = C_1 .. C_{m-2} | Cm (full, was the last block) | C_{m-1}[:r]
	head := n - aes.BlockSize - r                            // bytes of C_1..C_{m-2}
	prev, d, cm1 := &k.block3[0], &k.block3[1], &k.block3[2] // prev: C_{m-2}, chaining value for C_{m-1}
	*prev = zeroIV                                           // the IV, when there are only two blocks
	if head > 0 {
		copy(prev[:], buf[head-aes.BlockSize:head])
		k.cbc.CryptBlocks(buf[:head], buf[:head])
	}
	// Single blocks: CBC with a zero IV is the bare block decryption.
	k.cbc.SetIV(zeroIV[:])
	k.cbc.CryptBlocks(d[:], buf[head:head+aes.BlockSize]) // D = Pm||0 XOR C_{m-1}
	copy(cm1[:], buf[head+aes.BlockSize:])                // C_{m-1}[:r]
	copy(cm1[r:], d[r:])                                  // stolen tail
	// Pm = D[:r] XOR C_{m-1}[:r]
	for i := 0; i < r; i++ {
		buf[head+aes.BlockSize+i] = d[i] ^ cm1[i]
	}
	// P_{m-1} = Dec(C_{m-1}) XOR C_{m-2}
	k.cbc.SetIV(zeroIV[:])
	k.cbc.CryptBlocks(d[:], cm1[:])
	for i := 0; i < aes.BlockSize; i++ {
		buf[head+i] = d[i] ^ prev[i]
	}
}
