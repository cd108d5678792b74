package gateway

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/server"
	"github.com/hashicorp/go-hclog"
)

// newServer is the gateway's one server.New.
//
// INTERIM (wave-2 contract): the server in this tree still takes its
// audit trail as an hclog.Logger and has no OnSessionEnd. Until the server
// rework lands, recordLogger turns its "session" lines back into
// audit.Records so that everything above this file already runs on the
// contract (audit.Sink, OnSessionEnd). When server.Options has
// Audit audit.Sink and OnSessionEnd, delete recordLogger and write:
//
//	return server.New(server.Options{Settings: st, Logger: log, Audit: sink,
//		OnSessionEnd: onEnd, Resolver: resolver})
func newServer(st server.Settings, log hclog.Logger, sink audit.Sink, onEnd func(audit.Record), resolver server.Resolver) (*server.Server, error) {
	return server.New(server.Options{
		Settings: st,
		Logger:   log,
		Audit:    &recordLogger{Logger: hclog.NewNullLogger(), sink: sink, onEnd: onEnd, log: log},
		Resolver: resolver,
	})
}

// recordLogger reads the server's audit line ("session" with alternating
// keys and values) into an audit.Record.
type recordLogger struct {
	hclog.Logger
	sink  audit.Sink
	onEnd func(audit.Record)
	log   hclog.Logger
}

func (l *recordLogger) Log(level hclog.Level, msg string, args ...any) { l.Info(msg, args...) }

func (l *recordLogger) Info(msg string, args ...any) {
	if msg != "session" {
		return
	}
	r := audit.Record{Time: time.Now()}
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		s, isStr := args[i+1].(string)
		if isStr && s == "-" {
			continue
		}
		switch k {
		case "session":
			r.SessionID = fmt.Sprint(args[i+1])
		case "principal":
			r.Principal = s
			if _, realm, ok := strings.Cut(s, "@"); ok {
				r.Realm = realm
			}
		case "source":
			r.Source, _ = netip.ParseAddrPort(s)
		case "method":
			r.Method = s
		case "level":
			r.Level = s
		case "enctype":
			r.Enctype = s
		case "nec":
			r.NEC, _ = args[i+1].(bool)
		case "command":
			r.Command = s
		case "destination":
			r.Destination = s
		case "rule":
			r.Rule = s
		case "reply":
			code, text, _ := strings.Cut(s, " ")
			n, err := strconv.ParseUint(code, 10, 8)
			r.Reply, r.Replied, r.ReplyText = uint8(n), err == nil, text
		case "bytes_up":
			r.BytesUp, _ = args[i+1].(int64)
		case "bytes_down":
			r.BytesDown, _ = args[i+1].(int64)
		case "duration":
			r.Duration, _ = time.ParseDuration(s)
		case "reason":
			r.Detail = s
		}
	}
	if r.Method == "" {
		r.Level = "" // never negotiated: "none"
	}
	if err := l.sink.Write(&r); err != nil {
		l.log.Error("audit record not written", "session", r.SessionID, "error", err)
	}
	if l.onEnd != nil {
		l.onEnd(r)
	}
}
