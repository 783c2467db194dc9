package main

import (
	"math"
	"slices"
	"time"
)

// summary condenses one measured cell.
type summary struct {
	Requests  int           // measured requests, successful or not
	Errors    int           // failed requests
	Elapsed   time.Duration // wall time of the measured phase
	OpsPerSec float64       // successful requests per second of Elapsed
	Mean      time.Duration // latencies are of successful requests only
	P50       time.Duration
	P90       time.Duration
	P99       time.Duration
	Max       time.Duration
}

// summarize sorts lat in place and computes the summary of a cell whose
// successful requests took lat and whose failed requests number errors.
func summarize(lat []time.Duration, errors int, elapsed time.Duration) summary {
	slices.Sort(lat)
	s := summary{Requests: len(lat) + errors, Errors: errors, Elapsed: elapsed}
	if elapsed > 0 {
		s.OpsPerSec = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) == 0 {
		return s
	}
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	s.Mean = total / time.Duration(len(lat))
	s.P50 = percentile(lat, 50)
	s.P90 = percentile(lat, 90)
	s.P99 = percentile(lat, 99)
	s.Max = lat[len(lat)-1]
	return s
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value such that at least p% of the values are less
// than or equal to it. It returns 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 || !(p > 0) {
		return 0
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
