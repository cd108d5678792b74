package gssapi

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// decrypt decrypts a Kerberos EncryptedData after the checks gokrb5 does not
// make: the key's enctype matches and the ciphertext is long enough for a
// confounder and a checksum (gokrb5 panics on shorter input, upstream PR
// #580). Callers still recover panics at the trust boundary. Errors never
// carry the decoder's text, which may quote the input.
func decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32, what string) ([]byte, error) {
	if ed.EType != key.KeyType {
		return nil, fmt.Errorf("%w: %s encrypted with enctype %d, key is %d", ErrDefectiveToken, what, ed.EType, key.KeyType)
	}
	if p, err := lookupProfile(ed.EType, what); err == nil {
		k, err := newSealKeys(p, key.KeyValue, usage, true)
		if err != nil {
			return nil, err
		}
		plain, err := k.decryptMessage(bytes.Clone(ed.Cipher))
		if errors.Is(err, ErrDefectiveToken) {
			return nil, fmt.Errorf("%w: %s ciphertext of %d bytes", ErrDefectiveToken, what, len(ed.Cipher))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s does not decrypt with the key", ErrBadIntegrity, what)
		}
		return plain, nil
	}
	// Other enctypes (an RC4-encrypted ticket from an old AD account) go to
	// gokrb5.
	et, err := krbcrypto.GetEtype(ed.EType)
	if err != nil {
		return nil, &UnsupportedEnctypeError{Enctype: ed.EType, Role: what}
	}
	if n := EnctypeKeyLen(ed.EType); n != 0 && len(key.KeyValue) != n {
		return nil, fmt.Errorf("%w: %s key of %d bytes for %s", ErrDefectiveToken, what, len(key.KeyValue), EnctypeName(ed.EType))
	}
	if minLen := et.GetConfounderByteSize() + et.GetHMACBitLength()/8; len(ed.Cipher) < minLen {
		return nil, fmt.Errorf("%w: %s ciphertext of %d bytes, at least %d needed", ErrDefectiveToken, what, len(ed.Cipher), minLen)
	}
	plain, err := et.DecryptMessage(key.KeyValue, ed.Cipher, usage)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not decrypt with the key", ErrBadIntegrity, what)
	}
	return plain, nil
}

// newKey returns a random key of an AES enctype (random-to-key is the
// identity for these; gokrb5's GetKeyByteSize is wrong for enctype 20).
func newKey(enctype int32, role string) (types.EncryptionKey, error) {
	p, err := lookupProfile(enctype, role)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	k := make([]byte, p.keyLen)
	if _, err := rand.Read(k); err != nil {
		return types.EncryptionKey{}, fmt.Errorf("%w: %s: %w", ErrFailure, role, err)
	}
	return types.EncryptionKey{KeyType: enctype, KeyValue: k}, nil
}

// randomSeq returns an initial sequence number below 2^30, as MIT does, so
// that it encodes as a positive 32-bit ASN.1 INTEGER everywhere.
func randomSeq() (uint64, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("%w: sequence number: %w", ErrFailure, err)
	}
	return uint64(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) & 0x3fffffff, nil
}

// seqFromASN1 reads a Kerberos sequence number (UInt32). Some
// implementations encode values above 2^31 as negative INTEGERs.
func seqFromASN1(v int64) uint64 { return uint64(uint32(v)) }

// checkAESKey refuses keys of enctypes without an RFC 4121 profile here.
func checkAESKey(k types.EncryptionKey, role string) error {
	p, err := lookupProfile(k.KeyType, role)
	if err != nil {
		return err
	}
	if len(k.KeyValue) != p.keyLen {
		return fmt.Errorf("%w: %s of %d bytes for %s", ErrDefectiveToken, role, len(k.KeyValue), EnctypeName(k.KeyType))
	}
	return nil
}

// encrypt is the RFC 3961 encryption of plain in an AES key, as EncryptedData.
func encrypt(plain []byte, key types.EncryptionKey, usage uint32, what string) (types.EncryptedData, error) {
	p, err := lookupProfile(key.KeyType, what)
	if err != nil {
		return types.EncryptedData{}, err
	}
	k, err := newSealKeys(p, key.KeyValue, usage, false)
	if err != nil {
		return types.EncryptedData{}, err
	}
	ct, err := k.encryptMessage(plain)
	if err != nil {
		return types.EncryptedData{}, err
	}
	return types.EncryptedData{EType: key.KeyType, Cipher: ct}, nil
}
