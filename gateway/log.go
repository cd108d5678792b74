package gateway

import (
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gssocks/gssocks/config"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
)

// LogName is the name of the operational logger; sessions and the audit
// sink use sub-loggers of it.
const LogName = "gssocks"

// NewLogger returns the operational logger the log block describes,
// writing to w: level lc.Level (default info), text or JSON (lc.Format).
func NewLogger(lc config.Log, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       LogName,
		Level:      logLevel(lc.Level),
		JSONFormat: lc.Format == "json",
		Output:     w,
	})
}

func logLevel(s string) hclog.Level {
	if l := hclog.LevelFromString(s); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
}

// newAuditLogger is the logger under the audit sink: the log block's
// format, always at Info, whatever level the operational log has (so
// log { level = "warn" } does not silence the audit trail).
func newAuditLogger(lc config.Log, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       LogName + ".audit",
		Level:      hclog.Info,
		JSONFormat: lc.Format == "json",
		Output:     w,
	})
}

// LogDiagnostics writes configuration diagnostics to w in the log block's
// format. With format "json" each diagnostic is one JSON object (the
// logger's @level, @message, @timestamp, and file, line, col, severity,
// summary, detail) so that the stream stays one object per line; in text
// it is the file:line:col rendering with a source snippet of
// config.FormatDiagnostics. Diagnostics are written whatever the log
// level: a warning about a world-readable keytab is not noise.
func LogDiagnostics(w io.Writer, lc config.Log, files map[string]*hcl.File, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	if lc.Format != "json" {
		config.FormatDiagnostics(w, files, diags)
		return
	}
	l := hclog.New(&hclog.LoggerOptions{Name: LogName, Level: hclog.Trace, JSONFormat: true, Output: w})
	for _, d := range diags {
		f := []any{"severity", "error", "summary", d.Summary, "detail", d.Detail}
		if d.Severity == hcl.DiagWarning {
			f[1] = "warning"
		}
		if d.Subject != nil {
			f = append(f, "file", d.Subject.Filename, "line", d.Subject.Start.Line, "col", d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagWarning {
			l.Warn("configuration warning", f...)
		} else {
			l.Error("configuration error", f...)
		}
	}
}

// LogErrors logs msg once per error that err joins (errors.Join), so that
// each refusal is a line of its own, also in text format. An error that
// wraps several (fmt.Errorf with two %w, a *gssapi.KeytabError) is one
// refusal and stays one line: it is errors.Join's text, one error a line,
// that is split.
func LogErrors(l hclog.Logger, msg string, err error) {
	if err == nil {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		l.Error(msg, "error", line)
	}
}

// lockedWriter serialises writes to the process's stderr, which the
// operational log, the audit log (without log.audit) and the diagnostics
// share: each hclog line is one Write, and a line must not be cut by
// another logger's.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// liveLogger is an hclog.Logger that follows the gateway's current log
// configuration: a reload swaps the logger underneath (level, format),
// and loggers derived with With or Named (a session's) follow the swap
// too, so that after a reload to JSON no line is written as text.
type liveLogger struct {
	root   *liveRoot
	derive []func(hclog.Logger) hclog.Logger
	cache  atomic.Pointer[derived]
}

// liveRoot is the swappable logger; gen counts the swaps so that derived
// loggers know when to derive again.
type liveRoot struct {
	cur atomic.Pointer[derived]
}

type derived struct {
	gen uint64
	l   hclog.Logger
}

func newLiveLogger(l hclog.Logger) *liveLogger {
	r := &liveRoot{}
	r.cur.Store(&derived{l: l})
	return &liveLogger{root: r}
}

// swap makes l the logger every liveLogger of this root writes through.
func (r *liveRoot) swap(l hclog.Logger) {
	r.cur.Store(&derived{gen: r.cur.Load().gen + 1, l: l})
}

func (l *liveLogger) target() hclog.Logger {
	cur := l.root.cur.Load()
	if len(l.derive) == 0 {
		return cur.l
	}
	if c := l.cache.Load(); c != nil && c.gen == cur.gen {
		return c.l
	}
	t := cur.l
	for _, d := range l.derive {
		t = d(t)
	}
	l.cache.Store(&derived{gen: cur.gen, l: t})
	return t
}

func (l *liveLogger) with(d func(hclog.Logger) hclog.Logger) hclog.Logger {
	n := &liveLogger{root: l.root, derive: make([]func(hclog.Logger) hclog.Logger, 0, len(l.derive)+1)}
	n.derive = append(append(n.derive, l.derive...), d)
	return n
}

func (l *liveLogger) Log(level hclog.Level, msg string, args ...any) {
	l.target().Log(level, msg, args...)
}
func (l *liveLogger) Trace(msg string, args ...any) { l.target().Trace(msg, args...) }
func (l *liveLogger) Debug(msg string, args ...any) { l.target().Debug(msg, args...) }
func (l *liveLogger) Info(msg string, args ...any)  { l.target().Info(msg, args...) }
func (l *liveLogger) Warn(msg string, args ...any)  { l.target().Warn(msg, args...) }
func (l *liveLogger) Error(msg string, args ...any) { l.target().Error(msg, args...) }
func (l *liveLogger) IsTrace() bool                 { return l.target().IsTrace() }
func (l *liveLogger) IsDebug() bool                 { return l.target().IsDebug() }
func (l *liveLogger) IsInfo() bool                  { return l.target().IsInfo() }
func (l *liveLogger) IsWarn() bool                  { return l.target().IsWarn() }
func (l *liveLogger) IsError() bool                 { return l.target().IsError() }
func (l *liveLogger) ImpliedArgs() []any            { return l.target().ImpliedArgs() }
func (l *liveLogger) Name() string                  { return l.target().Name() }
func (l *liveLogger) GetLevel() hclog.Level         { return l.target().GetLevel() }

// SetLevel sets the level of the logger in force; the next reload sets it
// from the configuration again.
func (l *liveLogger) SetLevel(level hclog.Level) { l.target().SetLevel(level) }

func (l *liveLogger) With(args ...any) hclog.Logger {
	return l.with(func(t hclog.Logger) hclog.Logger { return t.With(args...) })
}

func (l *liveLogger) Named(name string) hclog.Logger {
	return l.with(func(t hclog.Logger) hclog.Logger { return t.Named(name) })
}

func (l *liveLogger) ResetNamed(name string) hclog.Logger {
	return l.with(func(t hclog.Logger) hclog.Logger { return t.ResetNamed(name) })
}

// StandardLogger and StandardWriter adapt the logger in force when they
// are called; they do not follow later reloads.
func (l *liveLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return l.target().StandardLogger(opts)
}

func (l *liveLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return l.target().StandardWriter(opts)
}
