package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/natstest"
)

func TestBreakerOverrideShowsInStatus(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if r := publisher(t, srv, "setup"); r.code != 0 {
		t.Fatalf("setup: %+v", r)
	}
	kv, err := fleet.EnsureBreakerBucket(ctx, js, fleet.BreakerBucketConfig(fleet.DefaultBreakerBucket, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.WriteShared(ctx, kv, fleet.SharedRecord{Provider: "ElevenLabs", State: fleet.SharedClosed, Since: time.Now(), By: "w-1"}, 0); err != nil {
		t.Fatal(err)
	}
	if r := publisher(t, srv, "breaker", "open", "Nope"); r.code != 2 || !strings.Contains(r.stderr, "the workers report: ElevenLabs") {
		t.Errorf("unknown provider: %+v", r)
	}
	if r := publisher(t, srv, "breaker", "open", "elevenlabs", "--for", "1h"); r.code != 0 || !strings.Contains(r.stdout, "ElevenLabs: breaker held OPEN on every worker until") {
		t.Fatalf("breaker open: %+v", r)
	}
	rec, _, err := fleet.ReadShared(ctx, kv, "ElevenLabs")
	if err != nil || rec.Override(time.Now()) != fleet.SharedOpen || time.Until(rec.Until) < 59*time.Minute {
		t.Errorf("record %+v, %v; want held open for an hour", rec, err)
	}
	if r := publisher(t, srv, "status"); !strings.Contains(r.stdout, "Breaker override: ElevenLabs held OPEN by an operator until") {
		t.Errorf("status does not show the override:\n%s", r.stdout)
	}
	if r := publisher(t, srv, "breaker", "auto", "ElevenLabs"); r.code != 0 {
		t.Fatalf("breaker auto: %+v", r)
	}
	if r := publisher(t, srv, "status"); strings.Contains(r.stdout, "Breaker override") {
		t.Errorf("override still shown after auto:\n%s", r.stdout)
	}
}
