package config

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limits of the replay_cache block.
const (
	maxReplayEntries   = 1 << 30
	maxRedisDB         = 1 << 16
	maxRedisKeyPrefix  = 128
	slowRedisTimeout   = time.Second // longer is warned about
	defaultRedisPrefix = "gssocks:replay:"
)

// replayCache decodes the replay_cache block of kerberos, and the
// deprecated replay_cache_size attribute.
func (d *decoder) replayCache(k *fileKerberos, out *ReplayCache) {
	out.Store = ReplayStoreLocal
	rc := k.ReplayCache
	if k.ReplayCacheSize != nil {
		if rc != nil && rc.MaxEntries != nil {
			d.errorf(k.ReplayCacheSize.Range, "Conflicting replay cache sizes",
				"replay_cache_size and replay_cache { max_entries } (line %d) both set the size; remove replay_cache_size.",
				rc.MaxEntries.Range.Start.Line)
		} else {
			d.warnf(k.ReplayCacheSize.Range, "Deprecated attribute",
				"replay_cache_size is now written replay_cache { max_entries = N } in the kerberos block; it still works for now.")
			out.MaxEntries = d.integer(k.ReplayCacheSize, 0, maxReplayEntries)
		}
	}
	if rc == nil {
		return
	}
	if rc.Store != nil {
		if it, ok := d.str(rc.Store); ok && d.oneOf(it, "replay store", ReplayStoreLocal, ReplayStoreRedis) {
			out.Store = it.s
		}
	}
	if rc.MaxEntries != nil {
		out.MaxEntries = d.integer(rc.MaxEntries, 0, maxReplayEntries)
	}
	out.MaxPerPrincipal = d.integer(rc.MaxPerPrincipal, 0, maxReplayEntries)
	if out.MaxEntries > 0 && out.MaxPerPrincipal > out.MaxEntries {
		d.errorf(rc.MaxPerPrincipal.Expr.Range(), "Share larger than the cache",
			"max_per_principal (%d) is larger than max_entries (%d): one principal could fill the whole cache. Use at most max_entries, or leave it out for a sixteenth of it.",
			out.MaxPerPrincipal, out.MaxEntries)
	}
	switch {
	case out.Store == ReplayStoreRedis && rc.Redis == nil:
		d.errorf(rc.DefRange, "Missing redis block",
			`store = "redis" needs a redis block with the server's address, like redis { address = "127.0.0.1:6379" }.`)
	case out.Store != ReplayStoreRedis && rc.Redis != nil:
		d.warnf(rc.Redis.DefRange, "Redis settings unused",
			`The redis block is used only with store = "redis"; this gateway keeps replays in its own memory, so other nodes do not see them.`)
	}
	if rc.Redis != nil {
		d.redis(rc.Redis, &out.Redis)
	}
	if out.Store != ReplayStoreRedis {
		out.Redis = ReplayRedis{}
	}
}

// redis decodes the redis block of replay_cache.
func (d *decoder) redis(r *fileRedis, out *ReplayRedis) {
	out.OnUnavailable = ReplayFailClosed
	if r.Address == nil {
		d.missing(r.DefRange, "address", `the Redis server shared by the gateway nodes, like address = "10.0.0.5:6379" or "/run/redis/redis.sock"`)
	} else if it, ok := d.str(r.Address); ok {
		if msg := checkRedisAddress(it.s); msg != "" {
			d.errorf(it.rng, "Invalid Redis address", "%q %s", it.s, msg)
		} else {
			out.Address = it.s
		}
	}
	if r.Username != nil {
		if it, ok := d.str(r.Username); ok {
			if it.s == "" || strings.ContainsAny(it.s, " \t\r\n") {
				d.errorf(it.rng, "Invalid Redis user", "The Redis user name must be one word; leave username out for the default user.")
			} else {
				out.Username = it.s
			}
		}
	}
	if r.PasswordFile != nil {
		if it, ok := d.str(r.PasswordFile); ok {
			if it.s == "" {
				d.errorf(it.rng, "Empty password file", "password_file is empty; give the path of the file holding the Redis password, or leave it out.")
			} else {
				out.PasswordFile = it.s
				if !filepath.IsAbs(it.s) {
					out.PasswordFile = filepath.Join(d.baseDir, it.s)
				}
			}
		}
	}
	out.DB = d.integer(r.DB, 0, maxRedisDB)
	if r.KeyPrefix != nil {
		if it, ok := d.str(r.KeyPrefix); ok {
			switch {
			case it.s == "":
				d.errorf(it.rng, "Empty key prefix",
					"An empty key_prefix would mix replay entries with whatever else the database holds. Leave it out for %q.", defaultRedisPrefix)
			case len(it.s) > maxRedisKeyPrefix || strings.IndexFunc(it.s, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0:
				d.errorf(it.rng, "Invalid key prefix", "key_prefix must be at most %d printable ASCII characters without spaces, like %q.", maxRedisKeyPrefix, defaultRedisPrefix)
			default:
				out.KeyPrefix = it.s
			}
		}
	}
	if r.Timeout != nil {
		out.Timeout = d.duration(r.Timeout, 0, false)
		if out.Timeout > slowRedisTimeout {
			d.warnf(r.Timeout.Expr.Range(), "Long Redis timeout",
				"Every handshake waits up to %s for Redis when it is slow or unreachable; the default is 200ms.", out.Timeout)
		}
	}
	if r.OnUnavailable != nil {
		if it, ok := d.str(r.OnUnavailable); ok && d.oneOf(it, "on_unavailable mode", ReplayFailClosed, ReplayFallBackLocal) {
			out.OnUnavailable = it.s
		}
	}
}

// checkRedisAddress returns what is wrong with a Redis address, or "".
func checkRedisAddress(s string) string {
	if strings.HasPrefix(s, "/") {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return `is not a host:port address; write "10.0.0.5:6379", "[2001:db8::5]:6379" or the absolute path of a Unix socket.`
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "has port " + strconv.Quote(port) + "; the port must be a number from 1 to 65535."
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		return "does not name a host: give an IP address or a host name."
	}
	return ""
}

// checkRedisPasswordFile checks that the Redis password file exists, is a
// readable file and is not world-readable. Its contents are not read
// here: they reach no Config and no diagnostic.
func (d *decoder) checkRedisPasswordFile(cfg *Config, fb *fileBody) {
	path := cfg.Kerberos.ReplayCache.Redis.PasswordFile
	if path == "" {
		return
	}
	rng := fb.Kerberos.ReplayCache.Redis.PasswordFile.Expr.Range()
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(rng, "Password file not found", "The Redis password file %q does not exist.", path)
		return
	case err != nil:
		d.errorf(rng, "Password file unreadable", "Cannot read the Redis password file: %v.", err)
		return
	case !fi.Mode().IsRegular():
		d.errorf(rng, "Password file is not a file", "The Redis password file %q is not a regular file.", path)
		return
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		d.warnf(rng, "Password file is world-readable",
			"Anyone on this host can read the Redis password in %q (mode %04o), and with it erase the gateways' replay entries. Run: chmod 600 %s",
			path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		d.errorf(rng, "Password file unreadable", "Cannot read the Redis password file: %v. The gateway must run as a user that can read it.", err)
		return
	}
	f.Close()
}
