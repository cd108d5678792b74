package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/testenv/dante"
)

// web is the sink's HTTP face for curl: GET /N sends N bytes, PUT
// /upload counts and discards the body.
type web struct {
	srv  *http.Server
	addr string
}

func startWeb() (*web, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &web{addr: ln.Addr().String()}
	w.srv = &http.Server{Handler: http.HandlerFunc(serveWeb)}
	go w.srv.Serve(ln)
	return w, nil
}

func (w *web) Close() error { return w.srv.Close() }

func serveWeb(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		buf := make([]byte, sinkBuf)
		n, err := io.CopyBuffer(io.Discard, r.Body, buf)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
		return
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
	if err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	sendPattern(w, make([]byte, sinkBuf), 0, n)
}

var levelWord = map[encap.Level]string{
	encap.LevelClear:           "clear",
	encap.LevelIntegrity:       "integrity",
	encap.LevelConfidentiality: "confidentiality",
}

// socksified measures one curl transfer of size bytes through s under
// Dante's socksify (MIT's GSS-API library in the curl process): a
// client neither gateway's authors wrote.
func (e *env) socksified(s *server, level encap.Level, op byte, size int64) (sample, error) {
	dir := filepath.Join(e.dir, "socksify-"+s.name+"-"+levelWord[level])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	env, err := e.dante.ClientEnv(dir, dante.ClientConfig{Proxy: s.addr, Level: levelWord[level]}, e.realm.Env("", e.ccache))
	if err != nil {
		return sample{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var args []string
	if op == opDownload {
		args = []string{"-sS", "--fail", "-o", "/dev/null", fmt.Sprintf("http://%s/%d", e.web.addr, size)}
	} else {
		args = []string{"-sS", "--fail", "-o", "/dev/null", "-T", "-", fmt.Sprintf("http://%s/upload", e.web.addr)}
	}
	cmd := e.dante.Command(ctx, env, "curl", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if op == opUpload {
		pr, pw := io.Pipe()
		cmd.Stdin = pr
		go func() {
			pw.CloseWithError(sendPattern(pw, make([]byte, sinkBuf), 0, size))
		}()
	}
	cpu := s.cpu()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("socksify curl: %v: %s", err, out.String())
	}
	secs := time.Since(start).Seconds()
	settle()
	return sample{secs: secs, cpu: s.cpu() - cpu, bytes: size}, nil
}
