//go:build !race

package nacostest_test

const raceEnabled = false
