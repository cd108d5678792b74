package testenv

import "syscall"

// kdcProcAttr makes the kernel kill krb5kdc if the test binary dies
// without calling Close (e.g. on a panic or a test timeout).
//
// Pdeathsig fires when the OS thread that started the child exits; Go only
// ends threads whose goroutine exits while locked to them, which test code
// calling Start does not do.
func kdcProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
