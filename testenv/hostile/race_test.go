//go:build race

package hostile

// raceEnabled: the test runs under the race detector, and so does the
// gateway it builds.
const raceEnabled = true
