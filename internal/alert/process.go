package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// processor turns events into incidents, summary windows and notifications. Events come one
// at a time for the whole fleet (the events consumer has MaxAckPending 1); the maintenance
// tick of every replica runs beside them, so every record is updated with compare-and-swap.
// Processing an event twice (a redelivery) re-publishes the same notification id, which the
// stream drops, and changes nothing else.
type processor struct {
	js          jetstream.JetStream
	kv          jetstream.KeyValue
	topo        Topology
	window      time.Duration
	reporterTTL time.Duration
	clock       clock.Clock
	log         *logrus.Logger
}

// handle applies one event.
func (p *processor) handle(ctx context.Context, ev Event) error {
	switch kinds[ev.Kind].role {
	case roleOpen:
		return p.report(ctx, ev)
	case roleResolve:
		return p.withdraw(ctx, ev)
	case roleSummary:
		return p.count(ctx, ev)
	}
	return fmt.Errorf("%w: no handling for kind %q", ErrInvalidEvent, ev.Kind)
}

func source(ev Event) string {
	if ev.Source == "" {
		return "unknown"
	}
	return ev.Source
}

// report opens the event's incident, or folds the event into the open one: a repeat is
// suppressed and counted, except the first service_down, which escalates.
func (p *processor) report(ctx context.Context, ev Event) error {
	key := incidentPrefix + ev.DedupKey
	var send *Notification
	err := casLoop(key, func() error {
		rec, rev, err := loadFor[incidentRecord](ctx, p, key)
		if err != nil {
			return err
		}
		if rev != 0 && rec.LastEventID == ev.ID {
			send = rec.LastNotification // a redelivery: publish the same notification again
			return nil
		}
		src := source(ev)
		if rev == 0 || !rec.Open {
			rec = incidentRecord{Incident: Incident{
				Key: ev.DedupKey, Kind: ev.Kind, Severity: ev.Severity, Provider: ev.Provider,
				Message: ev.Message, Open: true, OpenedAt: ev.Time, LastSeen: ev.Time, Count: 1,
				Escalated: ev.Kind == KindServiceDown, Reporters: map[string]time.Time{src: ev.Time},
				SeenBy: []string{src}, FirstEventID: ev.ID,
			}}
			rec.Title = incidentName(ev.Kind, orProvider(ev.Provider))
			n := p.incidentNotification(rec.Incident, TypeOpened, ev, rec.Title)
			send = &n
		} else {
			rec.Count++
			rec.Severity = maxSeverity(rec.Severity, ev.Severity)
			if rec.Reporters == nil {
				rec.Reporters = map[string]time.Time{}
			}
			if ev.Time.After(rec.Reporters[src]) {
				rec.Reporters[src] = ev.Time
			}
			if ev.Time.After(rec.LastSeen) {
				rec.LastSeen = ev.Time
			}
			rec.SeenBy = appendBounded(rec.SeenBy, src, maxSeenBy)
			send = nil
			if ev.Kind == KindServiceDown && !rec.Escalated {
				rec.Escalated = true
				n := p.incidentNotification(rec.Incident, TypeEscalated, ev, escalatedTitle(rec.Provider))
				send = &n
			} else {
				rec.Suppressed++
			}
		}
		rec.LastEventID, rec.LastNotification = ev.ID, send
		return store(ctx, p.kv, key, rec, rev)
	})
	if err != nil {
		return err
	}
	if send == nil {
		p.log.WithFields(eventFields(ev)).Debugf("Suppressed alert %s: incident %s is already open", ev.Kind, ev.DedupKey)
		return nil
	}
	return p.publish(ctx, *send)
}

// withdraw handles breaker_closed: the event's source no longer reports the provider down.
// When no worker does, the incident resolves, and with it the provider's quota, auth and
// fallback incidents.
func (p *processor) withdraw(ctx context.Context, ev Event) error {
	down := incidentPrefix + ev.DedupKey
	resolved, err := p.update(ctx, down, ev, func(rec *incidentRecord) (*Notification, bool) {
		src := source(ev)
		if _, ok := rec.Reporters[src]; !ok {
			return nil, false
		}
		delete(rec.Reporters, src)
		if len(rec.Reporters) > 0 {
			p.log.WithFields(eventFields(ev)).Infof("%s recovered on %s; still reported down by %s",
				orProvider(rec.Provider), src, strings.Join(rec.reporters(), ", "))
			return nil, true
		}
		n := p.resolve(rec, ev.Time, ev, fmt.Sprintf("%s recovered: the circuit breaker closed on every worker that reported it.",
			orProvider(rec.Provider)))
		return &n, true
	})
	if err != nil || !resolved {
		return err
	}
	return p.resolveFollowers(ctx, strings.TrimSuffix(ev.DedupKey, "."+conditionDown), ev.Time, ev)
}

// resolveFollowers resolves the provider's quota, auth and fallback incidents once the
// provider works again.
func (p *processor) resolveFollowers(ctx context.Context, slug string, at time.Time, ev Event) error {
	for _, cond := range followerConditions {
		_, err := p.update(ctx, incidentPrefix+slug+"."+cond, ev, func(rec *incidentRecord) (*Notification, bool) {
			n := p.resolve(rec, at, ev, fmt.Sprintf("%s works again: its circuit breakers closed.", orProvider(rec.Provider)))
			return &n, true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// update applies change to the open incident under key for event ev, idempotently, and
// publishes the notification change returns (nil: none); change reports whether it changed
// the record (if not, nothing is written). update reports whether the incident is resolved
// after the change (also when ev had already resolved it).
func (p *processor) update(ctx context.Context, key string, ev Event, change func(*incidentRecord) (*Notification, bool)) (bool, error) {
	var (
		send     *Notification
		resolved bool
	)
	err := casLoop(key, func() error {
		rec, rev, err := loadFor[incidentRecord](ctx, p, key)
		if err != nil || rev == 0 {
			send, resolved = nil, false
			return err
		}
		if rec.LastEventID == ev.ID {
			send, resolved = rec.LastNotification, !rec.Open
			return nil
		}
		if !rec.Open {
			send, resolved = nil, false
			return nil
		}
		n, changed := change(&rec)
		send, resolved = n, !rec.Open
		if !changed {
			return nil
		}
		rec.LastEventID, rec.LastNotification = ev.ID, send
		return store(ctx, p.kv, key, rec, rev)
	})
	if err != nil {
		return false, err
	}
	if send != nil {
		if err := p.publish(ctx, *send); err != nil {
			return resolved, err
		}
	}
	return resolved, nil
}

// resolve closes rec at `at` and returns the resolved notification.
func (p *processor) resolve(rec *incidentRecord, at time.Time, ev Event, why string) Notification {
	rec.Open = false
	if at.Before(rec.OpenedAt) {
		at = rec.OpenedAt // workers' clocks differ: never a negative duration
	}
	rec.ResolvedAt = at
	d := at.Sub(rec.OpenedAt)
	title := resolvedTitle(rec.Kind, rec.Provider, d)
	n := p.incidentNotification(rec.Incident, TypeResolved, ev, title)
	n.Message = fmt.Sprintf("%s Lasted %s; %d event(s), %d repeat(s) suppressed.", why, formatDuration(d), rec.Count, rec.Suppressed)
	n.Reporters = slices.Sorted(slices.Values(rec.SeenBy))
	return n
}

// incidentNotification builds the notification of incident transition t caused by ev.
func (p *processor) incidentNotification(inc Incident, t NotificationType, ev Event, title string) Notification {
	evCopy := ev
	n := Notification{
		ID:         inc.FirstEventID + "-" + string(t),
		Type:       t,
		Kind:       inc.Kind,
		Severity:   inc.Severity,
		Provider:   inc.Provider,
		DedupKey:   inc.Key,
		Title:      title,
		Message:    ev.Message,
		Time:       ev.Time,
		OpenedAt:   inc.OpenedAt,
		ResolvedAt: inc.ResolvedAt,
		Count:      inc.Count,
		Suppressed: inc.Suppressed,
		Reporters:  inc.reporters(),
		Event:      &evCopy,
	}
	if t == TypeEscalated {
		n.Severity = maxSeverity(inc.Severity, ev.Severity)
	}
	if t == TypeResolved {
		n.DurationSeconds = inc.ResolvedAt.Sub(inc.OpenedAt).Seconds()
	}
	return n
}

// count adds a call_failed or dead_lettered event to its window. The first event of a window
// is sent at once, on its own; the others are summarised when the window ends.
func (p *processor) count(ctx context.Context, ev Event) error {
	key := windowPrefix + ev.DedupKey
	now := p.clock.Now()
	var send []Notification
	err := casLoop(key, func() error {
		send = send[:0]
		rec, rev, err := loadFor[windowRecord](ctx, p, key)
		if err != nil {
			return err
		}
		if rev != 0 && rec.LastEventID == ev.ID {
			if rec.LastNotification != nil {
				send = append(send, *rec.LastNotification)
			}
			return nil
		}
		if rev == 0 || !now.Before(rec.Start.Add(p.window)) {
			if rev != 0 && rec.Count > 1 {
				send = append(send, p.summary(rec)) // the ended window, before it is replaced
			}
			n := p.single(ev)
			rec = windowRecord{
				Key: ev.DedupKey, Kind: ev.Kind, Provider: ev.Provider, Severity: ev.Severity,
				Start: now, Count: 1, FirstEventID: ev.ID,
				LastEventID: ev.ID, LastNotification: &n,
			}
			rec.add(ev)
			send = append(send, n)
			return store(ctx, p.kv, key, rec, rev)
		}
		rec.Count++
		rec.Severity = maxSeverity(rec.Severity, ev.Severity)
		rec.add(ev)
		rec.LastEventID, rec.LastNotification = ev.ID, nil
		return store(ctx, p.kv, key, rec, rev)
	})
	if err != nil {
		return err
	}
	if len(send) == 0 {
		p.log.WithFields(eventFields(ev)).Debugf("Counting %s in the %s summary window", ev.Kind, ev.DedupKey)
	}
	for _, n := range send {
		if err := p.publish(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (w *windowRecord) add(ev Event) {
	if w.Reasons == nil {
		w.Reasons = map[string]int{}
	}
	reason := ev.Reason
	if reason == "" {
		reason = "unknown"
	}
	w.Reasons[reason]++
	w.ContactIDs = appendBounded(w.ContactIDs, ev.ContactID, maxSampleContacts)
	w.Sources = appendBounded(w.Sources, ev.Source, maxSeenBy)
}

// single is the notification of one call_failed or dead_lettered event sent on its own.
func (p *processor) single(ev Event) Notification {
	evCopy := ev
	return Notification{
		ID: ev.ID + "-" + string(TypeAlert), Type: TypeAlert, Kind: ev.Kind, Severity: ev.Severity,
		Provider: ev.Provider, DedupKey: ev.DedupKey,
		Title:   alertTitle(ev.Kind, ev.ContactID),
		Message: ev.Message, Time: ev.Time, Count: 1, Reporters: []string{source(ev)}, Event: &evCopy,
	}
}

// summary is the notification of an ended window holding more than its first event.
func (p *processor) summary(w windowRecord) Notification {
	msg := fmt.Sprintf("%d in %s, the first of them reported on its own. By reason: %s.",
		w.Count, formatDuration(p.window), reasonsText(w.Reasons))
	if len(w.ContactIDs) > 0 {
		ids := strings.Join(w.ContactIDs, ", ")
		if more := w.Count - len(w.ContactIDs); more > 0 {
			ids += fmt.Sprintf(" and %d more", more)
		}
		msg += " Contacts: " + ids + "."
	}
	return Notification{
		ID: "summary-" + w.FirstEventID, Type: TypeSummary, Kind: w.Kind, Severity: w.Severity,
		Provider: w.Provider, DedupKey: w.Key,
		Title:   summaryTitle(w.Kind, w.Provider, w.Count, p.window),
		Message: msg, Time: w.Start.Add(p.window), DurationSeconds: p.window.Seconds(),
		Count: w.Count, Reasons: w.Reasons, ContactIDs: w.ContactIDs, Reporters: w.Sources,
	}
}

// maintain is the periodic work every replica does: send the summaries of ended windows
// and resolve incidents whose reporters all went silent for the reporter TTL (a worker that
// died with its breaker open).
func (p *processor) maintain(ctx context.Context) error {
	keys, err := listKeys(ctx, p.kv)
	if err != nil {
		return err
	}
	now := p.clock.Now()
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, windowPrefix):
			err = p.flushWindow(ctx, k, now)
		case strings.HasPrefix(k, incidentPrefix):
			err = p.expireReporters(ctx, k, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flushWindow sends the summary of an ended window and deletes it. Two replicas may both
// publish it: the summary's id makes the stream keep one.
func (p *processor) flushWindow(ctx context.Context, key string, now time.Time) error {
	rec, rev, err := loadFor[windowRecord](ctx, p, key)
	if err != nil || rev == 0 || now.Before(rec.Start.Add(p.window)) {
		return err
	}
	if rec.Count > 1 {
		if err := p.publish(ctx, p.summary(rec)); err != nil {
			return err
		}
	}
	if err := p.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && !isConflict(err) {
		return fmt.Errorf("delete ended summary window %s: %w", key, err)
	}
	return nil
}

// expireReporters drops reporters silent for longer than the reporter TTL and resolves the
// incident when none is left. A quota, auth or fallback incident waits for its provider's
// down incident while that one is open: it resolves with it.
func (p *processor) expireReporters(ctx context.Context, key string, now time.Time) error {
	rec, rev, err := loadFor[incidentRecord](ctx, p, key)
	if err != nil || rev == 0 || !rec.Open {
		return err
	}
	if rec.condition() != conditionDown {
		down, drev, err := loadFor[incidentRecord](ctx, p, incidentPrefix+rec.providerSlug()+"."+conditionDown)
		if err != nil {
			return err
		}
		if drev != 0 && down.Open {
			return nil
		}
	}
	stale := false
	for _, t := range rec.Reporters {
		if now.Sub(t) > p.reporterTTL {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	marker := Event{ID: fmt.Sprintf("%s-expired-%d", rec.FirstEventID, now.UnixNano()), Kind: rec.Kind, Severity: rec.Severity,
		Provider: rec.Provider, DedupKey: rec.Key, Time: now,
		Message: fmt.Sprintf("No worker has reported it for %s.", formatDuration(p.reporterTTL))}
	resolved, err := p.update(ctx, key, marker, func(r *incidentRecord) (*Notification, bool) {
		changed := false
		for w, t := range r.Reporters {
			if now.Sub(t) > p.reporterTTL {
				delete(r.Reporters, w)
				changed = true
			}
		}
		if len(r.Reporters) > 0 {
			return nil, changed
		}
		n := p.resolve(r, now, marker, fmt.Sprintf("No worker has reported %s for %s (the workers that did have stopped or recovered without saying so).",
			incidentName(r.Kind, orProvider(r.Provider)), formatDuration(p.reporterTTL)))
		return &n, true
	})
	if err != nil || !resolved || rec.condition() != conditionDown {
		return err
	}
	return p.resolveFollowers(ctx, rec.providerSlug(), now, marker)
}

// publish stores a notification in the stream with its id as Nats-Msg-Id and logs the
// seed's "Sending alert: <title>" line once (not for a duplicate the stream dropped).
func (p *processor) publish(ctx context.Context, n Notification) error {
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	msg := nats.NewMsg(p.topo.notifySubject(n))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, n.ID)
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.topo.Stream))
	if err != nil {
		return fmt.Errorf("publish notification %s: %w", n.ID, err)
	}
	if !ack.Duplicate {
		fields := logrus.Fields{"alert_kind": string(n.Kind), "alert_type": string(n.Type), "severity": string(n.Severity)}
		if n.Provider != "" {
			fields["service"] = n.Provider
		}
		p.log.WithFields(fields).Infof("Sending alert: %s", n.Title)
	}
	return nil
}

// loadFor loads a record for the processor: one that does not decode is logged and treated
// as empty, to be overwritten (compare-and-swap on its revision), so a damaged record cannot
// stop alerting.
func loadFor[T any](ctx context.Context, p *processor, key string) (T, uint64, error) {
	v, rev, err := load[T](ctx, p.kv, key)
	if errors.Is(err, errCorrupt) {
		p.log.WithError(err).Warnf("Replacing the unreadable alert record %s", key)
		return v, rev, nil
	}
	return v, rev, err
}

func eventFields(ev Event) logrus.Fields {
	f := logrus.Fields{"alert_kind": string(ev.Kind), "alert_id": ev.ID}
	if ev.Provider != "" {
		f["service"] = ev.Provider
	}
	if ev.ContactID != "" {
		f["contact_id"] = ev.ContactID
	}
	return f
}
