// Package gateway is the composition root of gssocks: it turns a validated
// configuration (package config) into a running gateway, and is the one
// place where that happens for `gssocks serve`, SIGHUP reloads, keytab
// rotation, `gssocks check` and the tests.
//
// The build path is config → keytab → acceptor (sharing one replay cache
// across reloads) → policy engine → operational logger and audit sink →
// listeners → server settings. The keytab is read and judged by gssapi
// alone (LoadKeytab, KeytabFacts: an AES key for each configured
// principal), the same for serve, check, reload and the rotation watcher,
// so no Kerberos fact is decided here. Provision runs it without serving and
// without creating anything (`check`, also `check --bind`); New runs it
// and binds; Start serves; Reload runs it again for a new configuration
// and swaps only if every step succeeded; Hangup is what SIGHUP does
// (reopen the audit file, read the file again, Reload); Shutdown drains.
//
// Every field of config.Config is either applied by a reload or named in
// a warning saying it needs a restart (ReloadContract). The operational
// log follows the log block across reloads, running sessions included;
// audit records go through an audit.LogSink whose logger stays at Info
// whatever log.level says, to log.audit (an audit.File, reopened on
// SIGHUP for logrotate) or to stderr. With log.format "json" every line
// written, configuration diagnostics included, is one JSON object.
//
// The package opens no configuration file itself except to reload the one
// the Config came from, installs no signal handlers (cmd/gssocks does),
// and knows nothing of the SOCKS or GSS-API wire formats.
package gateway
