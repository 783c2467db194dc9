package nacostest_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// inChildWithoutRace runs the calling test in a child "go test" built
// without the race detector, and reports whether it did (the caller then
// returns). It does so only in a -race build: nacos-sdk-go v2.3.2 has a data
// race of its own on every reconnect, which the race detector reports
// against whichever test made the client reconnect: RpcClient.reconnect
// (common/remote/rpc/rpc_client.go) closes the old connection, which queues
// a DISCONNECTED event, and then writes r.currentConnection while the event
// goroutine reads it in notifyConnectionEvent. Our code is not on either
// side of that race, and it cannot be avoided from outside the SDK, so the
// reconnect tests still run in full, just not under the detector.
func inChildWithoutRace(t *testing.T) bool {
	t.Helper()
	if !raceEnabled {
		return false
	}
	childTimeout := 15 * time.Minute // a cold build on a loaded 2-core machine
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout", childTimeout.String(), "-run", "^"+t.Name()+"$", ".")
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			kv = "GOFLAGS=" + strings.Join(slices.DeleteFunc(strings.Fields(v), func(f string) bool { return f == "-race" }), " ")
		}
		cmd.Env = append(cmd.Env, kv)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s without -race: %v\n%s", t.Name(), err, tail(string(out), 4000))
	}
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
