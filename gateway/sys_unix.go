//go:build unix

package gateway

import (
	"os"
	"syscall"
)

// canCreateIn reports whether the process may create a file in dir
// (access(2) with W_OK|X_OK).
func canCreateIn(dir string) error {
	const wOK, xOK = 0x2, 0x1
	return syscall.Access(dir, wOK|xOK)
}

// inode is fi's inode number.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
