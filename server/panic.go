package server

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gssocks/gssocks/audit"
	"github.com/hashicorp/go-hclog"
)

// recoverPanic, deferred at the top of each goroutine of a session, turns
// a panic there (gokrb5 and the codecs below handle hostile input) into
// the end of that session only: counted (Server.Panics), logged with its
// stack, recorded as an error, and the session's sockets closed so that
// its other goroutines end too. The panic value is logged only for a
// runtime error (an index, a nil pointer: no data in its text); for any
// other value only its type, since its text could quote the payload being
// processed.
func (s *session) recoverPanic(where string) {
	r := recover()
	if r == nil {
		return
	}
	s.srv.panics.Add(1)
	what := fmt.Sprintf("panic of type %T", r)
	if re, ok := r.(runtime.Error); ok {
		what = re.Error()
	}
	// The stack quoted: one log line, as every other.
	s.log.Error("internal error: panic in "+where+"; the session ends, the server goes on", "panic", logStr(what), "stack", hclog.Quote(debug.Stack()))
	s.rec.setEnd(audit.EndError, "internal error in "+where)
	s.abort()
}

// Panics is the number of panics recovered in sessions since New: each
// ended its session and nothing else (for metrics).
func (s *Server) Panics() int64 { return s.panics.Load() }
