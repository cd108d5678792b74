package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gateway"
)

// maxSessionsBody bounds what `gssocks sessions` reads from /sessions.
const maxSessionsBody = 64 << 20

// sessionsCmd is `gssocks sessions`: the live sessions of a running
// gateway, from its metrics listener's /sessions, as a table (what
// Dante's SIGUSR1 dump gives, without touching the process).
func sessionsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("metrics", "127.0.0.1:9180", "host:port of the gateway's metrics listener (metrics.listen)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gssocks sessions: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	list, err := fetchSessions(*addr, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks sessions: %v\n", err)
		return 1
	}
	writeSessions(stdout, list)
	return 0
}

func fetchSessions(addr string, timeout time.Duration) ([]gateway.SessionJSON, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/sessions", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no answer from the metrics listener (is a metrics block configured?): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/sessions answered %s", addr, resp.Status)
	}
	var list []gateway.SessionJSON
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxSessionsBody))
	if err := dec.Decode(&list); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("truncated answer: %w", err)
		}
		return nil, fmt.Errorf("%s/sessions: %w", addr, err)
	}
	return list, nil
}

// writeSessions prints list as a table, one session a line; names a
// client chose (principal, destination) are quoted when they hold a
// control character, so that they cannot rewrite the terminal.
func writeSessions(w io.Writer, list []gateway.SessionJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tMETHOD\tSOURCE\tDESTINATION\tLEVEL\tCOMMAND\tUP\tDOWN\tAGE")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
			cell(s.ID), cell(s.Principal), cell(s.Method), cell(s.Source), cell(s.Destination), cell(s.Level), cell(s.Command),
			s.BytesUp, s.BytesDown, (time.Duration(s.AgeSeconds * float64(time.Second))).Round(time.Second))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d sessions\n", len(list))
}

func cell(s string) string {
	switch {
	case s == "":
		return "-"
	case audit.NeedsEscape(s):
		return strconv.Quote(s)
	}
	return s
}
