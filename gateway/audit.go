package gateway

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/config"
)

// auditOut is where audit records go for one configuration: a LogSink
// over the audit file (log.audit) or over the shared stderr.
type auditOut struct {
	sink audit.Sink
	file *audit.File // nil when records go to stderr
}

// newAuditOut builds the sink of lc over file, or over stderr when file
// is nil.
func newAuditOut(lc config.Log, file *audit.File, stderr io.Writer) auditOut {
	var w io.Writer = stderr
	if file != nil {
		w = file
	}
	return auditOut{sink: audit.NewLogSink(newAuditLogger(lc, w)), file: file}
}

// liveSink is the gateway's audit.Sink: it writes through the sink of the
// configuration in force, which a reload swaps. Writes and the swap
// exclude each other so that no record goes to a file being closed.
type liveSink struct {
	mu  sync.RWMutex
	cur auditOut
}

func (s *liveSink) Write(r *audit.Record) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.sink.Write(r)
}

// swap puts out in force and closes the previous file if out does not
// use it any more.
func (s *liveSink) swap(out auditOut) error {
	s.mu.Lock()
	old := s.cur
	s.cur = out
	s.mu.Unlock()
	if old.file != nil && old.file != out.file {
		return old.file.Close()
	}
	return nil
}

func (s *liveSink) file() *audit.File {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.file
}

// checkAuditPath reports whether path could be opened for appending, as
// audit.OpenFile would, without creating it: an existing file is opened
// (without O_CREATE) and closed; for a missing one the parent must be a
// directory that the process may write into (access(2), which holds for
// root too except on a read-only file system).
func checkAuditPath(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	if err := canCreateIn(dir); err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", dir, err)
	}
	return nil
}
