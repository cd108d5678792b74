package client

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkCCache walks a ticket cache file in MIT's format, versions 3 and 4
// (https://web.mit.edu/kerberos/krb5-latest/doc/formats/ccache_file_format.html),
// checking every length and count against the bytes that remain, before
// gokrb5's decoder sees it: that decoder trusts the counts (a file can make
// it allocate gigabytes) and indexes past the end.
//
// It returns the file with the version 4 header (which holds only the
// KDC time offset) emptied, because gokrb5 misreads headers of other
// lengths than one field's.
func checkCCache(b []byte) ([]byte, error) {
	w := ccWalker{b: b}
	if len(b) < 2 || b[0] != 5 || (b[1] != 3 && b[1] != 4) {
		return nil, errors.New("not a version 3 or 4 ticket cache file")
	}
	w.p = 2
	if b[1] == 4 {
		n, err := w.u16()
		if err != nil {
			return nil, err
		}
		if err := w.skip(int(n)); err != nil {
			return nil, err
		}
	}
	body := w.p
	if err := w.principal(); err != nil {
		return nil, fmt.Errorf("default principal: %w", err)
	}
	for i := 0; w.p < len(b); i++ {
		if err := w.credential(b[1] == 3); err != nil {
			return nil, fmt.Errorf("credential %d: %w", i, err)
		}
	}
	if b[1] == 3 {
		return b, nil
	}
	return append([]byte{5, 4, 0, 0}, b[body:]...), nil
}

type ccWalker struct {
	b []byte
	p int
}

var errCCacheTruncated = errors.New("ticket cache truncated or a length exceeds the file")

func (w *ccWalker) skip(n int) error {
	if n < 0 || n > len(w.b)-w.p {
		return errCCacheTruncated
	}
	w.p += n
	return nil
}

func (w *ccWalker) u16() (uint16, error) {
	if len(w.b)-w.p < 2 {
		return 0, errCCacheTruncated
	}
	v := binary.BigEndian.Uint16(w.b[w.p:])
	w.p += 2
	return v, nil
}

func (w *ccWalker) u32() (uint32, error) {
	if len(w.b)-w.p < 4 {
		return 0, errCCacheTruncated
	}
	v := binary.BigEndian.Uint32(w.b[w.p:])
	w.p += 4
	return v, nil
}

// data skips a 32-bit length and that many bytes.
func (w *ccWalker) data() error {
	n, err := w.u32()
	if err != nil {
		return err
	}
	if n > uint32(len(w.b)-w.p) {
		return errCCacheTruncated
	}
	return w.skip(int(n))
}

// count reads a 32-bit count of items of at least min bytes each.
func (w *ccWalker) count(min int) (int, error) {
	n, err := w.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(min) > uint64(len(w.b)-w.p) {
		return 0, errCCacheTruncated
	}
	return int(n), nil
}

func (w *ccWalker) principal() error {
	if _, err := w.u32(); err != nil { // name type
		return err
	}
	n, err := w.count(4)
	if err != nil {
		return err
	}
	if err := w.data(); err != nil { // realm
		return err
	}
	for range n {
		if err := w.data(); err != nil {
			return err
		}
	}
	return nil
}

func (w *ccWalker) credential(v3 bool) error {
	for range 2 { // client, server
		if err := w.principal(); err != nil {
			return err
		}
	}
	if _, err := w.u16(); err != nil { // key type
		return err
	}
	if v3 {
		if _, err := w.u16(); err != nil {
			return err
		}
	}
	if err := w.data(); err != nil { // key
		return err
	}
	if err := w.skip(4*4 + 1 + 4); err != nil { // times, is_skey, flags
		return err
	}
	for range 2 { // addresses, authdata: 16-bit type and data each
		n, err := w.count(6)
		if err != nil {
			return err
		}
		for range n {
			if _, err := w.u16(); err != nil {
				return err
			}
			if err := w.data(); err != nil {
				return err
			}
		}
	}
	if err := w.data(); err != nil { // ticket
		return err
	}
	return w.data() // second ticket
}
