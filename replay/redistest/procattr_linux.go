package redistest

import "syscall"

// procAttr puts redis-server in its own process group and has the kernel
// kill it if the test binary dies without stopping it. Pdeathsig fires
// when the thread that started the child exits, which Go does only for
// goroutines locked to their thread; test code is not.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
