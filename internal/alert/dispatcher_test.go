package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

// observer counts delivery results per channel.
type observer struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *observer) AlertDelivered(channel, r string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[channel+"/"+r]++
}

// snapshot copies the counts, for failure messages printed while deliveries go on.
func (o *observer) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.n)
}

func (o *observer) get(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[key]
}

func TestIncidentAcrossThreeWorkers(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))

	var ems []*Emitter
	var bas []*BreakerAlerts
	for i := range 3 {
		em := newEmitter(t, js, fmt.Sprintf("worker-%d", i+1), mock, log)
		ba := NewBreakerAlerts(em, BreakerAlertsOptions{ServiceDownAfter: 5 * time.Minute, Clock: mock})
		t.Cleanup(ba.Close)
		ems, bas = append(ems, em), append(bas, ba)
	}
	published := func(n int64) func() bool {
		return func() bool {
			var sum int64
			for _, e := range ems {
				sum += e.Stats().Published
			}
			return sum == n
		}
	}
	const p = "ElevenLabs"
	opened := mock.Now()
	for _, ba := range bas {
		ba.BreakerStateChanged(p, resilience.StateClosed, resilience.StateOpen, mock.Now())
	}
	bas[0].BreakerStateChanged(p, resilience.StateOpen, resilience.StateHalfOpen, mock.Now())
	bas[0].BreakerStateChanged(p, resilience.StateHalfOpen, resilience.StateOpen, mock.Now())
	testwait.True(t, 10*time.Second, "the opened notification", func() bool { return len(rec.ofType(TypeOpened)) == 1 })
	testwait.True(t, 10*time.Second, "4 events published", published(4))

	mock.Add(5 * time.Minute) // every worker's service-down timer fires
	testwait.True(t, 10*time.Second, "the escalation", func() bool { return len(rec.ofType(TypeEscalated)) == 1 })
	testwait.True(t, 10*time.Second, "7 events published", published(7))

	bas[1].BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, mock.Now())
	bas[0].BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, mock.Now())
	testwait.True(t, 10*time.Second, "9 events published", published(9))
	mock.Add(30 * time.Second)
	closed := mock.Now()
	bas[2].BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, closed)
	testwait.True(t, 10*time.Second, "the resolved notification", func() bool { return len(rec.ofType(TypeResolved)) == 1 })

	all := rec.notifications()
	if len(all) != 3 {
		t.Fatalf("notifications: %s\nwant opened, escalated, resolved", describe(all))
	}
	if all[0].Type != TypeOpened || all[1].Type != TypeEscalated || all[2].Type != TypeResolved {
		t.Fatalf("order: %s", describe(all))
	}
	if all[0].Title != "Circuit breaker OPENED for ElevenLabs" || all[1].Title != "ElevenLabs still down" ||
		all[2].Title != "RESOLVED: Circuit breaker OPENED for ElevenLabs after 5m30s" {
		t.Errorf("titles: %s", describe(all))
	}
	res := all[2]
	if res.Count != 7 || res.Suppressed != 5 || res.Duration() != closed.Sub(opened) || res.DedupKey != "elevenlabs.down" {
		t.Errorf("resolved: count %d, suppressed %d, duration %s, key %s", res.Count, res.Suppressed, res.Duration(), res.DedupKey)
	}
	if !slices.Equal(res.Reporters, []string{"worker-1", "worker-2", "worker-3"}) || res.Severity != SeverityCritical {
		t.Errorf("resolved reporters %v, severity %s", res.Reporters, res.Severity)
	}
	for _, n := range all {
		if !strings.HasPrefix(n.ID, all[0].Event.ID) {
			t.Errorf("notification id %q does not derive from the opening event %q", n.ID, all[0].Event.ID)
		}
	}
	if got := logs.count("Sending alert: Circuit breaker OPENED for ElevenLabs\""); got != 1 {
		t.Errorf(`"Sending alert" for the opening logged %d times`, got)
	}
	if got := logs.count("Sending alert: RESOLVED"); got != 1 {
		t.Errorf(`"Sending alert" for the resolution logged %d times`, got)
	}
	incidents, err := OpenIncidents(context.Background(), js, "")
	if err != nil || len(incidents) != 0 {
		t.Errorf("open incidents after resolution: %v, %v", incidents, err)
	}
}

func TestSummaryWindow(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	em := newEmitter(t, js, "worker-1", mock, log)
	kv, err := js.KeyValue(context.Background(), DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	windowCount := func() int {
		w, rev, err := load[windowRecord](context.Background(), kv, "window.elevenlabs.call_failed")
		if err != nil || rev == 0 {
			return 0
		}
		return w.Count
	}

	// A window holding one failure: that one alert, no summary.
	mustEmit(t, em, CallFailed("ElevenLabs", "1", "service_unavailable", "Service temporarily unavailable"))
	testwait.True(t, 10*time.Second, "the single alert", func() bool { return len(rec.notifications()) == 1 })
	if n := rec.notifications()[0]; n.Type != TypeAlert || n.Title != "Call Failed for Contact 1" || n.Severity != SeverityWarning {
		t.Errorf("single alert: %+v", n)
	}
	advanceUntil(t, mock, 10*time.Second, "the ended window to be deleted", func() bool { return windowCount() == 0 })
	if logs.count("Sending alert: Call Failed for Contact 1") != 1 {
		t.Errorf("the seed's line is missing: %s", logs.String())
	}

	// Five failures in a window: the first at once, then one summary of all five.
	for i := 2; i <= 6; i++ {
		reason := "service_unavailable"
		if i == 6 {
			reason = "timeout"
		}
		mustEmit(t, em, CallFailed("ElevenLabs", fmt.Sprint(i), reason, ""))
	}
	testwait.True(t, 10*time.Second, "five failures counted", func() bool { return windowCount() == 5 })
	if got := rec.notifications(); len(got) != 2 || got[1].Title != "Call Failed for Contact 2" {
		t.Fatalf("before the window ends: %s", describe(got))
	}
	advanceUntil(t, mock, 10*time.Second, "the summary", func() bool { return len(rec.ofType(TypeSummary)) == 1 })
	s := rec.ofType(TypeSummary)[0]
	if s.Title != "5 calls failed (ElevenLabs) in 1m0s" || s.Count != 5 ||
		!slices.Equal(s.ContactIDs, []string{"2", "3", "4", "5", "6"}) || s.Reasons["service_unavailable"] != 4 || s.Reasons["timeout"] != 1 {
		t.Errorf("summary: %+v", s)
	}
	if !strings.Contains(s.Message, "service_unavailable ×4, timeout ×1") {
		t.Errorf("summary message: %q", s.Message)
	}
	if len(rec.notifications()) != 3 {
		t.Errorf("notifications: %s", describe(rec.notifications()))
	}
}

func TestSummaryOfEndedWindowWhenNextFailureArrives(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, _ := newLogger()
	rec := &recorder{}
	o := fastOptions(mock, log, Channel{Name: "Test", Notifier: rec})
	o.SummaryWindow = time.Hour // the maintenance tick (5s) never reaches the end first
	startDispatcher(t, js, o)
	em := newEmitter(t, js, "worker-1", mock, log)
	for i := range 3 {
		mustEmit(t, em, DeadLettered("LLM", fmt.Sprint(i), "max_deliveries", ""))
	}
	kv, err := js.KeyValue(context.Background(), DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	testwait.True(t, 10*time.Second, "three failures counted", func() bool {
		w, rev, err := load[windowRecord](context.Background(), kv, "window.llm.dead_lettered")
		return err == nil && rev != 0 && w.Count == 3
	})
	if got := rec.notifications(); len(got) != 1 || got[0].Title != "Contact 0 dead-lettered" {
		t.Fatalf("before the window ends: %s", describe(got))
	}
	mock.Set(mock.Now().Add(time.Hour + time.Second))
	mustEmit(t, em, DeadLettered("LLM", "9", "max_deliveries", ""))
	testwait.True(t, 10*time.Second, "summary and new alert", func() bool { return len(rec.notifications()) == 3 })
	got := rec.notifications()
	if got[1].Type != TypeSummary || got[1].Count != 3 || got[1].Title != "3 contacts dead-lettered (LLM) in 1h0m0s" ||
		got[2].Type != TypeAlert || got[2].Title != "Contact 9 dead-lettered" {
		t.Errorf("notifications: %s", describe(got))
	}
}

func TestRedeliveredEventsAreHarmless(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	ctx := context.Background()
	if err := Ensure(ctx, js, Topology{}); err != nil {
		t.Fatal(err)
	}
	// The same event twice under different message ids: what a redelivery after a lost ack
	// looks like to the dispatcher.
	publishRaw := func(ev Event, msgID string) {
		t.Helper()
		data, _ := json.Marshal(ev)
		m := nats.NewMsg(ev.Subject(DefaultSubjectPrefix))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, msgID)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	opened := Event{ID: "evt_open", Kind: KindBreakerOpened, Severity: SeverityCritical, Provider: "LLM",
		Message: "Circuit breaker OPENED for LLM", Time: mock.Now(), DedupKey: "llm.down", Source: "w1"}
	failed := Event{ID: "evt_fail", Kind: KindCallFailed, Severity: SeverityWarning, Provider: "LLM", ContactID: "4",
		Message: "Call failed for Contact 4", Time: mock.Now(), DedupKey: "llm.call_failed", Source: "w1"}
	closed := Event{ID: "evt_close", Kind: KindBreakerClosed, Severity: SeverityInfo, Provider: "LLM",
		Message: "Circuit breaker CLOSED for LLM", Time: mock.Now().Add(time.Minute), DedupKey: "llm.down", Source: "w1"}
	// A last, different event: events are processed and delivered in order, so once its
	// notification arrives every earlier one has been handled.
	sentinel := Event{ID: "evt_sentinel", Kind: KindAuthFailed, Severity: SeverityCritical, Provider: "CRM",
		Message: "CRM rejected our credentials", Time: mock.Now(), DedupKey: "crm.auth", Source: "w1"}
	for i, ev := range []Event{opened, opened, failed, failed, closed, closed, sentinel} {
		publishRaw(ev, fmt.Sprintf("m%d", i))
	}
	testwait.True(t, 10*time.Second, "the sentinel's notification", func() bool {
		got := rec.notifications()
		return len(got) > 0 && got[len(got)-1].Provider == "CRM"
	})
	got := rec.notifications()[:len(rec.notifications())-1]
	if len(got) != 3 || got[0].Type != TypeOpened || got[1].Type != TypeAlert || got[2].Type != TypeResolved {
		t.Fatalf("notifications: %s", describe(got))
	}
	if got[2].Count != 1 || got[2].Suppressed != 0 {
		t.Errorf("the repeat was counted: %+v", got[2])
	}
	// The line is logged after the publish is acked, so it may trail the delivery.
	testwait.True(t, 10*time.Second, `four "Sending alert" lines`, func() bool { return logs.count("Sending alert:") >= 4 })
	if n := logs.count("Sending alert:"); n != 4 {
		t.Errorf(`"Sending alert" logged %d times, want 4 (three and the sentinel)`, n)
	}
}

func TestSilentReportersExpire(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, _ := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	em := newEmitter(t, js, "worker-gone", mock, log)
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "ElevenLabs", Message: "Circuit breaker OPENED for ElevenLabs"})
	mustEmit(t, em, QuotaExhausted("ElevenLabs", "3", "quota exceeded"))
	testwait.True(t, 10*time.Second, "two incidents", func() bool { return len(rec.ofType(TypeOpened)) == 2 })
	incidents, err := OpenIncidents(context.Background(), js, DefaultBucket)
	if err != nil || len(incidents) != 2 || incidents[0].Key != "elevenlabs.down" || incidents[1].Key != "elevenlabs.quota" {
		t.Fatalf("OpenIncidents = %+v, %v", incidents, err)
	}
	if r := incidents[0].Reporters; len(r) != 1 || r["worker-gone"].IsZero() {
		t.Errorf("reporters: %v", r)
	}
	// The worker dies with its breaker open: nobody closes it. After the TTL both resolve.
	advanceUntil(t, mock, 5*time.Second, "the expiry", func() bool { return len(rec.ofType(TypeResolved)) == 2 })
	res := rec.ofType(TypeResolved)
	if !strings.Contains(res[0].Message, "No worker has reported") || res[0].DedupKey != "elevenlabs.down" ||
		res[1].DedupKey != "elevenlabs.quota" || !strings.Contains(res[1].Message, "works again") {
		t.Errorf("resolutions: %+v", res)
	}
	if d := res[0].Duration(); d < 15*time.Minute || d > 16*time.Minute {
		t.Errorf("duration %s, want just over the TTL", d)
	}
}

func TestBreakerClosedResolvesFollowers(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, _ := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	em := newEmitter(t, js, "w1", mock, log)
	for _, ev := range FailureEvents("ElevenLabs", "5", "authentication", true, "invalid_api_key") {
		mustEmit(t, em, ev)
	}
	mustEmit(t, em, FallbackActivated("ElevenLabs", "Backup TTS", ""))
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "ElevenLabs", Message: "open"})
	testwait.True(t, 10*time.Second, "three incidents", func() bool { return len(rec.ofType(TypeOpened)) == 3 })
	mock.Add(2 * time.Minute)
	mustEmit(t, em, Event{Kind: KindBreakerClosed, Provider: "ElevenLabs", Message: "closed"})
	testwait.True(t, 10*time.Second, "three resolutions", func() bool { return len(rec.ofType(TypeResolved)) == 3 })
	var titles []string
	for _, n := range rec.ofType(TypeResolved) {
		titles = append(titles, n.Title)
	}
	want := []string{
		"RESOLVED: Circuit breaker OPENED for ElevenLabs after 2m0s",
		"RESOLVED: ElevenLabs authentication failed after 2m0s",
		"RESOLVED: Fallback took over from ElevenLabs after 2m0s",
	}
	if !slices.Equal(titles, want) {
		t.Errorf("resolved titles:\n%q\nwant\n%q", titles, want)
	}
}

func TestChannelDownThenUpDeliversLateInOrder(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	down, up := &recorder{}, &recorder{}
	down.setFail(func(Notification) (bool, error) { return down503("Flaky") })
	obs := &observer{}
	o := fastOptions(mock, log, Channel{Name: "Flaky", Notifier: down}, Channel{Name: "Steady", Notifier: up})
	o.Breaker.FailureThreshold = 100 // this test is about redelivery, not the breaker
	o.Observer = obs
	startDispatcher(t, js, o)
	em := newEmitter(t, js, "w1", mock, log)
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})
	mustEmit(t, em, AuthFailed("LLM", "1", "bad key"))

	testwait.True(t, 10*time.Second, "the steady channel to get both", func() bool { return len(up.notifications()) == 2 })
	testwait.True(t, 10*time.Second, "three failed deliveries", func() bool { return obs.get("Flaky/retried") >= 3 })
	if len(down.notifications()) != 0 {
		t.Fatal("the failing channel accepted something")
	}
	down.setFail(nil) // the channel recovers
	testwait.True(t, 10*time.Second, "the late deliveries", func() bool { return len(down.notifications()) == 2 })
	got := down.notifications()
	if got[0].Title != "Circuit breaker OPENED for LLM" || got[1].Title != "LLM authentication failed" {
		t.Errorf("late deliveries out of order: %s", describe(got))
	}
	// The observer hears of a delivery just after the notifier returns: wait for it.
	testwait.True(t, 10*time.Second, "both channels' deliveries observed", func() bool {
		return obs.get("Flaky/sent") == 2 && obs.get("Steady/sent") == 2
	})
	if logs.count("it stays queued, next try in") == 0 {
		t.Error("no failed delivery was logged")
	}
}

func TestChannelDropsWhatItCanNeverAccept(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	rec.setFail(func(n Notification) (bool, error) {
		if n.Kind == KindQuotaExhausted {
			return false, fault.Classify(fault.Facts{Provider: "Test", Status: 400, Message: "Test answered HTTP 400: invalid_payload"})
		}
		return false, nil
	})
	obs := &observer{}
	o := fastOptions(mock, log, Channel{Name: "Test", Notifier: rec})
	o.Observer = obs
	startDispatcher(t, js, o)
	em := newEmitter(t, js, "w1", mock, log)
	mustEmit(t, em, QuotaExhausted("ElevenLabs", "1", ""))
	mustEmit(t, em, AuthFailed("LLM", "2", ""))
	testwait.True(t, 10*time.Second, "the next notification", func() bool { return len(rec.notifications()) == 1 })
	if got := rec.notifications()[0].Kind; got != KindAuthFailed {
		t.Errorf("delivered %s", got)
	}
	if obs.get("Test/dropped") != 1 || logs.count("ElevenLabs quota exhausted\\\": Test refused it for good") != 1 {
		t.Errorf("drop not reported: %v\n%s", obs.snapshot(), logs.String())
	}
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls != 2 {
		t.Errorf("Notify called %d times, want 2 (no retry of a refused notification)", calls)
	}
}

func TestChannelBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	rec.setFail(func(Notification) (bool, error) { return down503("Test") })
	obs := &observer{}
	o := fastOptions(mock, log, Channel{Name: "Test", Notifier: rec})
	o.Observer = obs
	startDispatcher(t, js, o)
	em := newEmitter(t, js, "w1", mock, log)
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})
	testwait.True(t, 10*time.Second, "the channel's breaker to open", func() bool { return obs.get("Test/deferred") >= 1 })
	if logs.count("Circuit breaker OPENED for Test") == 0 {
		t.Errorf("the channel's breaker opening was not logged:\n%s", logs.String())
	}
	rec.mu.Lock()
	callsWhileOpen := rec.calls
	rec.mu.Unlock()
	if callsWhileOpen < 3 {
		t.Errorf("breaker opened after %d calls, want at least the threshold 3", callsWhileOpen)
	}
	rec.setFail(nil)
	testwait.True(t, 10*time.Second, "delivery after the breaker's open timeout", func() bool { return len(rec.notifications()) == 1 })
}

func TestMinSeverityAndNoChannels(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	obs := &observer{}
	o := fastOptions(mock, log, Channel{Name: "Pager", Notifier: rec, MinSeverity: SeverityCritical})
	o.Observer = obs
	startDispatcher(t, js, o)
	em := newEmitter(t, js, "w1", mock, log)
	mustEmit(t, em, CallFailed("LLM", "1", "timeout", ""))
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})
	testwait.True(t, 10*time.Second, "the critical one", func() bool { return len(rec.notifications()) == 1 })
	if obs.get("Pager/filtered") != 1 || rec.notifications()[0].Kind != KindBreakerOpened {
		t.Errorf("filtering: %v %s", obs.snapshot(), describe(rec.notifications()))
	}
	if logs.count("Sending alert: Call Failed for Contact 1") != 1 {
		t.Errorf("a filtered notification must still be logged as sent")
	}
}

func TestDispatcherWithoutChannelsLogsWhatWouldBeSent(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	log, logs := newLogger()
	startDispatcher(t, js, DispatcherOptions{Logger: log})
	em := newEmitter(t, js, "w1", nil, log)
	mustEmit(t, em, CallFailed("ElevenLabs", "1", "service_unavailable", "Service temporarily unavailable"))
	testwait.True(t, 10*time.Second, "the log line", func() bool { return logs.count("Sending alert: Call Failed for Contact 1") == 1 })
	if logs.count("every channel disabled") != 1 {
		t.Errorf("the disabled channels were not announced:\n%s", logs.String())
	}
}

func TestNewDispatcherValidates(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cases := map[string]DispatcherOptions{
		"same consumer name":                    {Channels: []Channel{{Name: "Web hook", Notifier: rec}, {Name: "web_hook", Notifier: rec}}},
		"needs a name":                          {Channels: []Channel{{Notifier: rec}}},
		"unknown minimum severity":              {Channels: []Channel{{Name: "x", Notifier: rec, MinSeverity: "page"}}},
		"summary window":                        {SummaryWindow: -time.Second},
		"redelivery delays":                     {RedeliverMin: time.Minute, RedeliverMax: time.Second},
		"subject prefix":                        {Topology: Topology{SubjectPrefix: "alerts.>"}},
		"retry max attempts":                    {Retry: resilience.RetryPolicy{MaxAttempts: -1}},
		"must exceed the longest delivery, 50s": {ChannelAckWait: 30 * time.Second},
	}
	for want, o := range cases {
		_, err := NewDispatcher(nil, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: NewDispatcher = %v", want, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidOptions) && !errors.Is(err, ErrInvalidTopology) {
			t.Errorf("%s: error %v wraps neither sentinel", want, err)
		}
	}
	if got, err := OpenIncidents(context.Background(), jsFor(t), "nothing-here"); err != nil || got != nil {
		t.Errorf("OpenIncidents of a missing bucket = %v, %v", got, err)
	}
}

func TestUnreadableRecordIsReplaced(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	kv, err := js.KeyValue(context.Background(), DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "incident.llm.down", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	em := newEmitter(t, js, "w1", mock, log)
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})
	testwait.True(t, 10*time.Second, "the opened notification", func() bool { return len(rec.ofType(TypeOpened)) == 1 })
	if logs.count("Replacing the unreadable alert record incident.llm.down") != 1 {
		t.Errorf("the replacement was not logged:\n%s", logs.String())
	}
}

func TestAnEventThatAlwaysFailsIsGivenUp(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, logs := newLogger()
	rec := &recorder{}
	startDispatcher(t, js, fastOptions(mock, log, Channel{Name: "Test", Notifier: rec}))
	em := newEmitter(t, js, "w1", mock, log)
	ctx := context.Background()
	if err := js.DeleteKeyValue(ctx, DefaultBucket); err != nil { // every try now fails
		t.Fatal(err)
	}
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})
	testwait.True(t, 10*time.Second, "the event to be given up", func() bool { return logs.count("Giving up on alert event breaker_opened") == 1 })
	if err := Ensure(ctx, js, Topology{}); err != nil {
		t.Fatal(err)
	}
	mustEmit(t, em, AuthFailed("CRM", "", "bad key"))
	testwait.True(t, 10*time.Second, "the next event's notification", func() bool { return len(rec.notifications()) == 1 })
	if got := rec.notifications()[0].Provider; got != "CRM" {
		t.Errorf("delivered %s", got)
	}
}

// A channel whose setup is wrong (a Slack channel archived) keeps its alerts queued, opens
// its breaker at the first refusal, and that raises one incident on the other channels.
func TestMisconfiguredChannelRaisesOneIncidentElsewhere(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	mock := newMock()
	log, _ := newLogger()
	slack, pager := &recorder{}, &recorder{}
	slack.setFail(func(Notification) (bool, error) {
		return true, fault.Classify(fault.Facts{Provider: "Slack", Status: 410, Code: "channel_is_archived",
			Message: "Slack answered HTTP 410: channel_is_archived"})
	})
	obs := &observer{}
	em := newEmitter(t, js, "w1", mock, log)
	breakers := NewBreakerAlerts(em, BreakerAlertsOptions{Clock: mock, Logger: log})
	t.Cleanup(breakers.Close)
	o := fastOptions(mock, log, Channel{Name: "Slack", Notifier: slack}, Channel{Name: "Pager", Notifier: pager})
	o.Observer, o.ChannelBreakers = obs, breakers
	o.Breaker.OpenTimeout = time.Hour // no half-open call during the test
	startDispatcher(t, js, o)
	mustEmit(t, em, Event{Kind: KindBreakerOpened, Provider: "LLM", Message: "open"})

	aboutSlack := func() int {
		n := 0
		for _, got := range pager.notifications() {
			if got.Provider == "Slack" && got.Kind == KindBreakerOpened {
				n++
			}
		}
		return n
	}
	testwait.True(t, 10*time.Second, "the incident about Slack on the pager", func() bool { return aboutSlack() >= 1 })
	testwait.True(t, 10*time.Second, "Slack's alerts deferred", func() bool { return obs.get("Slack/deferred") >= 1 })
	if n := aboutSlack(); n != 1 {
		t.Errorf("%d incidents about Slack, want 1", n)
	}
	if d := obs.get("Slack/dropped"); d != 0 {
		t.Errorf("a configuration error dropped %d alerts; they must stay queued", d)
	}
	slack.mu.Lock()
	calls := slack.calls
	slack.mu.Unlock()
	if calls != 1 {
		t.Errorf("Slack called %d times before its breaker opened, want 1 (a settings error opens it at once)", calls)
	}
}
