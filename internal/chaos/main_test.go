package chaos

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Sizes: the default is the short run `make test` includes; CHAOS=full runs the issue's
// sizes (`make chaos`).
func full() bool { return os.Getenv("CHAOS") == "full" }

// pick returns short or, under CHAOS=full, long.
func pick[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

var (
	buildOnce sync.Once
	buildDir  string
	bins      Binaries
	buildErr  error
)

// binaries builds nats-server, the worker and the publisher once per test binary.
func binaries(t *testing.T) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "callagent-chaos-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		bins, buildErr = Build(ctx, buildDir)
		t.Logf("built nats-server, worker and publisher in %s", time.Since(start).Round(100*time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
