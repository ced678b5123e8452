package queue_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

func TestSetupCreatesWhatIsMissingAndReportsNoDrift(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	topo := config.Defaults().Topology

	p, err := queue.Setup(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Created) != 7 || len(p.Drift) != 0 || len(p.Missing) != 0 {
		t.Fatalf("first setup: %+v; want 7 created, no drift", p)
	}
	p, err = queue.Setup(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Created) != 0 || len(p.Drift) != 0 {
		t.Fatalf("second setup: %+v; want nothing created, no drift", p)
	}
}

// Another process's settings (a laptop's DEDUPE_WINDOW, a worker's ACK_WAIT) must not change
// what exists: they are drift, reported with both values, until `setup --apply`.
func TestDifferentSettingsAreDriftNeverApplied(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	prod := config.Defaults().Topology
	if _, err := queue.Setup(ctx, js, prod); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PauseConsumer(ctx, prod.ContactsStream, prod.Consumer, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	laptop := prod
	laptop.DedupeWindow = time.Minute
	laptop.AckWait = 7 * time.Second
	laptop.MaxAckPending = 3
	for _, ensure := range []func() error{
		func() error { _, err := queue.EnsureContactsStream(ctx, js, laptop); return err },
		func() error { _, err := queue.EnsureConsumer(ctx, js, laptop); return err },
		func() error { _, err := queue.Setup(ctx, js, laptop); return err },
	} {
		if err := ensure(); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := js.Stream(ctx, prod.ContactsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config.Duplicates; got != prod.DedupeWindow {
		t.Errorf("stream duplicate window = %v after another process's ensure; want %v kept", got, prod.DedupeWindow)
	}
	cons, err := js.Consumer(ctx, prod.ContactsStream, prod.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if info := cons.CachedInfo(); info.Config.AckWait != prod.AckWait || !info.Paused {
		t.Errorf("consumer ack wait %v paused %v; want %v and still paused", info.Config.AckWait, info.Paused, prod.AckWait)
	}

	p, err := queue.Inspect(ctx, js, laptop)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]queue.Drift{}
	for _, d := range p.Drift {
		got[d.Resource+" "+d.Field] = d
	}
	consumer := "consumer " + prod.ContactsStream + "/" + prod.Consumer + " "
	want := map[string][2]string{
		"stream " + prod.ContactsStream + " duplicate_window":   {"1m0s", prod.DedupeWindow.String()},
		"stream " + prod.DeadLetterStream + " duplicate_window": {"1m0s", prod.DedupeWindow.String()},
		consumer + "ack_wait":        {"7s", prod.AckWait.String()},
		consumer + "max_ack_pending": {"3", strconv.Itoa(prod.MaxAckPending)},
	}
	for field, v := range want {
		d, ok := got[field]
		if !ok {
			t.Errorf("no drift reported for %s; got %+v", field, p.Drift)
			continue
		}
		if d.Configured != v[0] || d.Server != v[1] || d.Incompatible || !d.Fixable {
			t.Errorf("%s drift = %+v; want configured %s, server %s, compatible, fixable", field, d, v[0], v[1])
		}
	}
	if len(p.Drift) != len(want) {
		t.Errorf("drift = %v; want exactly %d entries", p.Drift, len(want))
	}
	if s := got["stream "+prod.ContactsStream+" duplicate_window"].String(); !strings.Contains(s, "stream CONTACTS") || !strings.Contains(s, "DEDUPE_WINDOW") {
		t.Errorf("drift line %q does not name the stream and the setting", s)
	}

	// setup --apply changes exactly the drifted fields and keeps the pause.
	left, err := queue.ApplyDrift(ctx, js, laptop)
	if err != nil || len(left) != 0 {
		t.Fatalf("apply: left %v, err %v", left, err)
	}
	if p, err = queue.Inspect(ctx, js, laptop); err != nil || len(p.Drift) != 0 {
		t.Fatalf("after apply: %+v, %v; want no drift", p, err)
	}
	cons, err = js.Consumer(ctx, prod.ContactsStream, prod.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if !cons.CachedInfo().Paused {
		t.Error("apply resumed the paused consumer")
	}
}

// A stream created by someone else runs when compatible (extra subjects, other limits) and is
// named exactly when not.
func TestForeignStreamCompatibility(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	topo := config.Defaults().Topology
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: topo.ContactsStream, Subjects: []string{topo.ContactsSubject, "other.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, MaxMsgs: 1_000_000,
	}); err != nil {
		t.Fatal(err)
	}
	p, err := queue.Setup(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if bad := p.Incompatible(); len(bad) != 0 {
		t.Fatalf("compatible foreign stream reported incompatible: %v", bad)
	}
	if slices.Contains(p.Created, "stream "+topo.ContactsStream) {
		t.Error("setup claims to have created the existing stream")
	}

	other := topo
	other.ContactsStream = "LIMITS"
	other.ContactsSubject = "limits.contacts"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMITS", Subjects: []string{"limits.other"}}); err != nil {
		t.Fatal(err)
	}
	p, err = queue.Inspect(ctx, js, other)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, d := range p.Incompatible() {
		fields[d.Field] = true
		if !strings.Contains(d.Resource, "LIMITS") {
			t.Errorf("incompatible drift on %s; want the LIMITS stream", d.Resource)
		}
	}
	if !fields["retention"] || !fields["subjects"] || len(fields) != 2 {
		t.Errorf("incompatible fields %v; want retention and subjects", fields)
	}
}
