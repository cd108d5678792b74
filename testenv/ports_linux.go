package testenv

import (
	"fmt"
	"os"
	"strings"
)

// loopbackListeners counts the sockets bound to 127.0.0.1:port that
// receive new clients: TCP sockets in LISTEN state and unconnected UDP
// sockets, as listed in /proc/net/tcp and /proc/net/udp. known is false
// where that cannot be told.
func loopbackListeners(port int) (tcp, udp int, known bool, err error) {
	if tcp, err = countProcNet("/proc/net/tcp", port, "0A"); err != nil { // TCP_LISTEN
		return 0, 0, false, err
	}
	if udp, err = countProcNet("/proc/net/udp", port, "07"); err != nil { // TCP_CLOSE: not connected
		return 0, 0, false, err
	}
	return tcp, udp, true, nil
}

// countProcNet counts the lines of a /proc/net table whose local address
// is 127.0.0.1:port (IPv4 in host byte order, port in hex) and whose
// state is st.
func countProcNet(path string, port int, st string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("testenv: %w", err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		// sl local_address rem_address st ...
		if f := strings.Fields(line); len(f) > 3 && f[1] == local && f[3] == st {
			n++
		}
	}
	return n, nil
}
