package audit

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/hashicorp/go-hclog"
)

// Sink receives each session's record once, when the session ends. Write
// must be safe for concurrent use and must not keep r.
type Sink interface {
	Write(r *Record) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(r *Record) error

// Write calls f(r).
func (f SinkFunc) Write(r *Record) error { return f(r) }

// LogSink writes records as "session" lines of a structured logger, at
// Info, whatever level the operational log runs at: the gateway gives it a
// logger that shares the operational log's output and format but not its
// level.
type LogSink struct {
	l hclog.Logger
}

// NewLogSink returns a sink writing through l. When l's level is above
// Info (log.level = "warn"), the sink writes through a copy of l set to
// Info, provided the copy's level is its own: hclog sub-loggers share
// their level with their parent unless the root logger was made with
// IndependentLevels, and raising a shared level would turn the
// operational log up to Info. When the level is shared, l is left as it
// is and each record is written at l's level instead (WARN or ERROR), so
// that no record is filtered out; only hclog.Off loses records.
func NewLogSink(l hclog.Logger) *LogSink {
	if before := l.GetLevel(); before > hclog.Info && before != hclog.Off {
		own := l.With()
		own.SetLevel(hclog.Info)
		if l.GetLevel() == before {
			l = own
		} else {
			l.SetLevel(before) // shared: undo
		}
	}
	return &LogSink{l: l}
}

// Write logs r, at Info or at the logger's level when that is higher (see
// NewLogSink). String values holding control or non-printable characters
// (a newline in a principal or host name sent by a client) are quoted, so
// that a record is always exactly one line in text form; the JSON form
// escapes them anyway.
func (s *LogSink) Write(r *Record) error {
	f := r.Fields()
	for i := 1; i < len(f); i += 2 {
		if v, ok := f[i].(string); ok && NeedsEscape(v) {
			f[i] = hclog.Quote(v)
		}
	}
	lvl := hclog.Info
	if cur := s.l.GetLevel(); cur > lvl && cur <= hclog.Error {
		lvl = cur
	}
	s.l.Log(lvl, "session", f...)
	return nil
}

// NeedsEscape reports whether s holds a character that would break a
// one-line text log record or mislead its reader: a control character, a
// non-printable rune, or invalid UTF-8.
func NeedsEscape(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r == unicode.ReplacementChar || !unicode.IsPrint(r)
	})
}

// File is an append-only audit file that can be reopened under the same
// path, for log rotation: after `mv audit.log audit.log.1`, Reopen (on
// SIGHUP) makes new records go to a new audit.log. Safe for concurrent
// use.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenFile opens (creating with mode 0640) path for appending.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return f, nil
}

// Path is the file's path.
func (a *File) Path() string { return a.path }

// Write appends p to the current file.
func (a *File) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return 0, os.ErrClosed
	}
	return a.f.Write(p)
}

// Reopen opens the path again and switches to it; on error the current
// file stays in use.
func (a *File) Reopen() error {
	f, err := openAppend(a.path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.f
	a.f = f
	a.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later writes fail with os.ErrClosed.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
