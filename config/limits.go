package config

// handshakeLimits decodes the limits on connections that have not
// authenticated yet, which have their own caps so that silent connections
// cannot hold the max_sessions slots of authenticated users. A per-source
// cap above the total is pointless but harmless (the total still holds):
// a warning, not an error.
func (d *decoder) handshakeLimits(l *fileLimits, out *Limits) {
	out.MaxHandshakes = d.integer(l.MaxHandshakes, DefaultMaxHandshakes, 1<<30)
	out.MaxHandshakesPerSource = d.integer(l.MaxHandshakesPerSource, DefaultMaxHandshakesPerSource, 1<<30)
	if out.MaxHandshakes > 0 && out.MaxHandshakesPerSource > out.MaxHandshakes && l.MaxHandshakesPerSource != nil {
		d.warnf(l.MaxHandshakesPerSource.NameRange, "Per-source limit above the total",
			"max_handshakes_per_source (%d) is above max_handshakes (%d), which bounds every source together.",
			out.MaxHandshakesPerSource, out.MaxHandshakes)
	}
}
