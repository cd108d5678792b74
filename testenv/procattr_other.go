//go:build !linux

package testenv

import "syscall"

// kdcProcAttr has nothing to add where there is no Pdeathsig.
func kdcProcAttr() *syscall.SysProcAttr { return nil }
