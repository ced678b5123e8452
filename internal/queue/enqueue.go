package queue

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/contact"
)

// EnqueueStats counts what the stream did with the published contacts.
type EnqueueStats struct {
	// Enqueued is the number of contacts the stream stored.
	Enqueued int
	// Duplicates is the number the stream dropped because a message with the same contact id
	// was stored within the dedupe window.
	Duplicates int
}

// PublishError names the contact whose publish could not be confirmed.
type PublishError struct {
	ContactID string
	Err       error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("publish contact %q: %v", e.ContactID, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// Enqueuer publishes contacts with at most Window publishes awaiting their ack, so a large
// file costs one round trip per window rather than per contact. Each message carries
// Nats-Msg-Id = contact id: the stream's dedupe window drops a second enqueue.
//
// It speaks the JetStream publish protocol itself instead of nats.go's PublishMsgAsync,
// which allocates a future, two channels, a map entry and a reply token per message, hands
// every ack to two goroutines and decodes it with encoding/json (about 12 µs of CPU a
// message, measured on a 2-core machine): one reused message and header, one reply
// subscription whose acks the publishing goroutine itself reads from a channel (no lock, no
// other goroutine), each matched to a ring of slots by the token of its reply subject and
// read without decoding in the common case. The payload of
// each message in flight is kept in its slot (bounded by maxInflightBytes), so that a message
// whose ack failed or never came is published again, with the same Nats-Msg-Id: the stream
// stores it at most once.
//
// When the stream keeps a single replica on the server the Enqueuer is connected to (see
// SetStream), the Enqueuer matches acks by the order of the publishes instead ("in order"):
// every publish carries the same reply subject, which the server finds in its subject caches,
// where a reply subject per message costs it a lookup, two cache entries and their garbage
// for every ack, in the goroutine that stores the stream's messages (about 15% of the server's
// CPU time per contact, measured). The server reads a connection's messages in order and that
// goroutine stores and acks them in order, so the n-th "stored" ack is for the n-th publish
// as long as no message or ack is lost on the way, which only a broken connection does
// (nothing else lies between them: no route, gateway or leaf node). The Enqueuer checks every
// ack against that order: a plain "stored" ack whose sequence follows the previous one's, with
// no reconnect and no ack dropped since its subscription. Anything else ends the in-order mode
// for good: an error or duplicate ack (either may overtake the acks of earlier messages), a
// gap in the sequences (a lost ack, another publisher), a reconnect, a dropped ack, a publish
// that failed, no ack for ackTimeout. Every message in flight is then published again with a
// token of its own, as above, and the acks on the in-order subject are ignored from then on;
// the counts stay as exact as with lost acks (see SetStreamLastSeq).
//
// An Enqueuer is not safe for concurrent use.
type Enqueuer struct {
	js      jetstream.JetStream
	subject string
	window  int

	msg    nats.Msg  // reused: PublishMsg copies it into the connection's buffer
	msgID  [1]string // the Nats-Msg-Id value of msg
	reply  []byte
	inbox  string // reply subjects are inbox + token, or orderReply
	sub    *nats.Subscription
	acks   chan *nats.Msg
	batch  []*nats.Msg // acks taken from acks, to settle
	lastSq uint64      // see SetStreamLastSeq
	timer  *time.Timer

	// In-order mode (see SetStream).
	inOrder    bool
	orderReply string  // inbox + inOrderToken
	order      []int32 // ring of the slots published in order, oldest at order[head]
	head       int
	queued     int
	nextSeq    uint64 // the stream sequence the next in-order ack must carry
	reconnects uint64 // the connection's reconnects when the acks were subscribed to
	resend     bool   // in-order mode ended: publish every message in flight again

	slots    []slot
	free     []int32 // free slots, used last-in first-out
	tokens   uint64  // tokens issued; the token of a publish from slot s is n*window + s
	inflight int     // busy slots
	bytes    int     // payload bytes of busy slots
	failed   []int32 // slots whose first ack was an error: published again synchronously
	settled  uint64  // slots settled, to tell progress
	stats    EnqueueStats
}

type slotState uint8

const (
	slotFree     slotState = iota
	slotInflight           // published, waiting for its ack
	slotFailed             // its ack was an error: to publish again synchronously
)

type slot struct {
	state slotState
	// first and last are the tokens of the first and the latest publish of this message:
	// the first ack carrying one of them settles it.
	first, last uint64
	id          string
	data        []byte
}

// retryPublishAttempts bounds the synchronous re-publish of a message whose ack failed.
// Re-publishing is safe: the same Nats-Msg-Id makes the stream store it at most once.
const retryPublishAttempts = 3

// ackTimeout is how long the Enqueuer waits without any ack before it publishes every
// message in flight again (their acks were lost with a connection, or never came).
var ackTimeout = 5 * time.Second

// maxInflightBytes bounds the payload bytes in flight (and kept for re-publishing), so that a
// file of large contacts does not hold Window large messages.
const maxInflightBytes = 8 << 20

// maxKeptBuffer is the largest payload buffer a slot keeps for reuse.
const maxKeptBuffer = 64 << 10

// NewEnqueuer returns an Enqueuer publishing to subject with at most window messages
// awaiting their ack.
func NewEnqueuer(js jetstream.JetStream, subject string, window int) *Enqueuer {
	if window < 1 {
		window = 1
	}
	e := &Enqueuer{
		js:      js,
		subject: subject,
		window:  window,
		slots:   make([]slot, window),
		free:    make([]int32, window),
	}
	for i := range e.free {
		e.free[i] = int32(window - 1 - i)
	}
	e.msg.Subject = subject
	e.msg.Header = nats.Header{jetstream.MsgIDHeader: e.msgID[:]}
	return e
}

// SetStreamLastSeq tells the Enqueuer the last sequence of the stream before its first
// publish, so that its counts stay exact when acks are lost (a reconnect): a message
// published again for want of an ack, whose duplicate ack names a later sequence, was stored
// by its first publish and counts as enqueued, not as a duplicate.
func (e *Enqueuer) SetStreamLastSeq(seq uint64) { e.lastSq = seq + 1 }

// SetStream is SetStreamLastSeq(info.State.LastSeq) that also lets the Enqueuer match acks by
// the order of the publishes when the stream keeps one replica on the server it is connected
// to (see Enqueuer): its publishes and their acks then go through that server only, in order.
// Call it before the first publish.
func (e *Enqueuer) SetStream(info *jetstream.StreamInfo) {
	if info == nil {
		return
	}
	e.SetStreamLastSeq(info.State.LastSeq)
	e.inOrder = e.tokens == 0 && localStream(e.js.Conn(), info)
	if e.inOrder {
		e.order = make([]int32, e.window)
		e.nextSeq = info.State.LastSeq + 1
	}
}

// localStream reports whether the stream of info keeps one replica on the server nc is
// connected to, so that no route, gateway or leaf node stands between the publisher and it.
func localStream(nc *nats.Conn, info *jetstream.StreamInfo) bool {
	if info.Config.Replicas > 1 || info.Config.NoAck {
		return false
	}
	if js, _ := nc.ConnectedServerJetStream(); !js {
		return false // JetStream is served by another server
	}
	if info.Cluster == nil { // a standalone JetStream server answered: this one
		return nc.ConnectedClusterName() == ""
	}
	return info.Cluster.Leader != "" && info.Cluster.Leader == nc.ConnectedServerName() && len(info.Cluster.Replicas) == 0
}

// NewContactMsg is the message for one contact: its JSON as the payload and its id as
// Nats-Msg-Id.
func NewContactMsg(subject, msgID string, c contact.Contact) (*nats.Msg, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode contact %q: %w", c.ID, err)
	}
	m := nats.NewMsg(subject)
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	return m, nil
}

// Add publishes c, first waiting for room in the window.
func (e *Enqueuer) Add(ctx context.Context, c contact.Contact) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode contact %q: %w", c.ID, err)
	}
	return e.AddRaw(ctx, c.ID, payload)
}

// AddRaw publishes payload, the JSON of a contact that passed validation (a record of the
// contacts file as it is), with Nats-Msg-Id = id, first waiting for room in the window.
// payload is copied: the caller may reuse it.
func (e *Enqueuer) AddRaw(ctx context.Context, id string, payload []byte) error {
	select {
	case <-ctx.Done():
		return &PublishError{ContactID: id, Err: ctx.Err()}
	default:
	}
	if e.sub == nil {
		if err := e.subscribe(); err != nil {
			return &PublishError{ContactID: id, Err: err}
		}
	}
	if full := func() bool {
		return len(e.free) == 0 || len(e.failed) > 0 || e.inflight > 0 && e.bytes+len(payload) > maxInflightBytes
	}; full() {
		e.drain()
		for full() {
			// Wait for a quarter of the window, not one slot: fewer wake-ups, same throughput.
			if err := e.wait(ctx, max(1, e.window/4), maxInflightBytes/2); err != nil {
				return err
			}
		}
	}
	if err := e.resendInFlight(); err != nil {
		return err
	}
	n := e.free[len(e.free)-1]
	e.free = e.free[:len(e.free)-1]
	s := &e.slots[n]
	s.state, s.id, s.data = slotInflight, id, append(s.data[:0], payload...)
	e.inflight++
	e.bytes += len(payload)
	s.first = e.issue(n) // in order: a token of its own all the same, for a later republish
	if e.inOrder {
		e.order[(e.head+e.queued)%len(e.order)] = n
		e.queued++
	}
	return e.publish(n)
}

// issue returns a new token for slot n and makes it the slot's latest.
func (e *Enqueuer) issue(n int32) uint64 {
	tok := e.tokens*uint64(e.window) + uint64(n)
	e.tokens++
	e.slots[n].last = tok
	return tok
}

// publish sends the message of slot n with the slot's latest token.
func (e *Enqueuer) publish(n int32) error {
	s := &e.slots[n]
	if e.inOrder {
		e.msg.Reply = e.orderReply
	} else {
		e.reply = strconv.AppendUint(append(e.reply[:0], e.inbox...), s.last, 10)
		e.msg.Reply = string(e.reply)
	}
	e.msg.Data = s.data
	e.msgID[0] = s.id
	err := e.js.Conn().PublishMsg(&e.msg)
	e.msg.Data = nil
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrConnectionClosed):
		return &PublishError{ContactID: s.id, Err: err}
	}
	// Not sent (reconnect buffer full, …): publish it synchronously, with retries. Its
	// in-order ack will not come: the order no longer tells which ack is whose.
	e.leaveInOrder()
	s.state = slotFailed
	e.failed = append(e.failed, n)
	return nil
}

// inOrderToken ends the reply subject of every in-order publish; a token of one message is
// a number.
const inOrderToken = "o"

func (e *Enqueuer) subscribe() error {
	nc := e.js.Conn()
	if e.inflight > 0 {
		e.leaveInOrder() // their acks were lost while nobody listened
	}
	e.inbox = nc.NewRespInbox() + "."
	e.orderReply = e.inbox + inOrderToken
	// Room for an ack per slot and as many again from publishes repeated after a timeout; an
	// ack that finds the channel full is dropped by nats.go, and its message published again.
	e.acks = make(chan *nats.Msg, 2*e.window+64)
	e.reconnects = nc.Stats().Reconnects
	sub, err := nc.ChanSubscribe(e.inbox+"*", e.acks)
	if err != nil {
		return fmt.Errorf("subscribe to publish acks: %w", err)
	}
	e.sub = sub
	return nil
}

// drain settles the acks that came.
func (e *Enqueuer) drain() { e.take(nil) }

// take settles m (when not nil) and the acks that came after it. In order, it first makes
// sure that none came through a later connection or after an ack was dropped (see
// Enqueuer): nats.go counts a reconnect before it reads from the new connection, so an ack
// taken from there is seen with the count changed.
func (e *Enqueuer) take(m *nats.Msg) {
	e.batch = e.batch[:0]
	if m != nil {
		e.batch = append(e.batch, m)
	}
more:
	for {
		select {
		case m := <-e.acks:
			e.batch = append(e.batch, m)
		default:
			break more
		}
	}
	if len(e.batch) == 0 {
		return
	}
	if e.inOrder && e.connChanged() {
		e.leaveInOrder()
	}
	for _, m := range e.batch {
		e.settle(m)
	}
	clear(e.batch)
}

// connChanged reports whether the connection reconnected or dropped an ack since the acks
// were subscribed to.
func (e *Enqueuer) connChanged() bool {
	if dropped, err := e.sub.Dropped(); err != nil || dropped > 0 {
		return true
	}
	return e.js.Conn().Stats().Reconnects != e.reconnects
}

// leaveInOrder ends the in-order mode: every message in flight is to be published again
// with a token of its own (by resendInFlight, before anything else is published or
// awaited), and the in-order acks still to come are ignored.
func (e *Enqueuer) leaveInOrder() {
	if !e.inOrder {
		return
	}
	e.inOrder = false
	e.order, e.head, e.queued = nil, 0, 0
	e.resend = e.inflight > 0
}

// resendInFlight publishes every message in flight again after the in-order mode ended.
func (e *Enqueuer) resendInFlight() error {
	if !e.resend {
		return nil
	}
	e.resend = false
	return e.republish()
}

var (
	ackPrefix    = []byte(`{"stream":`)
	ackError     = []byte(`"error"`)
	ackDuplicate = []byte(`"duplicate"`)
)

// settle settles the slot of an ack.
func (e *Enqueuer) settle(m *nats.Msg) {
	token := m.Subject[min(len(e.inbox), len(m.Subject)):]
	if token == inOrderToken {
		e.settleInOrder(m)
		return
	}
	tok, err := strconv.ParseUint(token, 10, 64)
	if err != nil {
		return
	}
	n := int32(tok % uint64(e.window))
	s := &e.slots[n]
	if s.state != slotInflight || tok < s.first || tok > s.last {
		return // an ack of a message already settled
	}
	dup, seq, ackErr := readAck(m)
	if ackErr != nil {
		s.state = slotFailed
		e.failed = append(e.failed, n)
		return
	}
	if dup && s.last != s.first && e.lastSq != 0 && seq >= e.lastSq {
		// Published again after its ack was lost, and stored after the Enqueuer started:
		// by its first publish.
		dup = false
	}
	e.count(dup)
	e.release(n)
}

// settleInOrder settles the oldest message published in order with its ack, when the ack
// says it was stored right after the previous one; any other ack ends the in-order mode.
func (e *Enqueuer) settleInOrder(m *nats.Msg) {
	if !e.inOrder {
		return // its message was published again since, with a token of its own
	}
	seq, ok := storedAck(m.Data)
	if !ok || seq != e.nextSeq || e.queued == 0 {
		e.leaveInOrder()
		return
	}
	n := e.order[e.head]
	if e.slots[n].state != slotInflight {
		e.leaveInOrder()
		return
	}
	e.head = (e.head + 1) % len(e.order)
	e.queued--
	e.nextSeq++
	e.count(false)
	e.release(n)
}

var ackSeq = []byte(`,"seq":`)

// storedAck reads the sequence of a plain "stored" ack as the server writes it,
// {"stream":"CONTACTS","seq":12} (with "domain" before "seq" in a JetStream domain); ok is
// false for any other ack: a duplicate, an error or an empty one with a status header end
// otherwise.
func storedAck(data []byte) (seq uint64, ok bool) {
	end := len(data) - 1
	if !bytes.HasPrefix(data, ackPrefix) || data[end] != '}' {
		return 0, false
	}
	start := end
	for start > 0 && data[start-1] >= '0' && data[start-1] <= '9' {
		start--
	}
	if start == end || !bytes.HasSuffix(data[:start], ackSeq) {
		return 0, false
	}
	for _, c := range data[start:end] {
		d := uint64(c - '0')
		if seq > (math.MaxUint64-d)/10 {
			return 0, false
		}
		seq = seq*10 + d
	}
	return seq, true
}

// readAck reads a JetStream publish ack: {"stream":"CONTACTS","seq":12} or with
// "duplicate": true, or {"error":{…}}, or an empty message with a status header (503: no
// stream listens on the subject).
func readAck(m *nats.Msg) (dup bool, seq uint64, err error) {
	data := m.Data
	if len(data) == 0 {
		if m.Header.Get("Status") == "503" {
			return false, 0, nats.ErrNoResponders
		}
		return false, 0, fmt.Errorf("empty publish ack (status %q)", m.Header.Get("Status"))
	}
	// The server writes {"stream":"CONTACTS","seq":12} and `,"duplicate": true}`. A quote
	// inside a JSON string is escaped, so these byte patterns only match keys.
	if bytes.HasPrefix(data, ackPrefix) && !bytes.Contains(data, ackError) {
		if !bytes.Contains(data, ackDuplicate) {
			return false, 0, nil
		}
		var ack jetstream.PubAck
		if err := json.Unmarshal(data, &ack); err != nil {
			return false, 0, fmt.Errorf("invalid publish ack %q: %w", data, err)
		}
		return ack.Duplicate, ack.Sequence, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return false, 0, fmt.Errorf("invalid publish ack %q: %w", data, err)
	}
	if resp.Error == nil {
		return false, 0, fmt.Errorf("invalid publish ack %q", data)
	}
	return false, 0, resp.Error
}

func (e *Enqueuer) count(dup bool) {
	if dup {
		e.stats.Duplicates++
	} else {
		e.stats.Enqueued++
	}
}

func (e *Enqueuer) release(n int32) {
	s := &e.slots[n]
	e.inflight--
	e.bytes -= len(s.data)
	s.state, s.id = slotFree, ""
	if cap(s.data) > maxKeptBuffer {
		s.data = nil
	}
	e.free = append(e.free, n)
	e.settled++
}

// wait settles acks until at least wantFree slots are free and at most wantBytes payload
// bytes are in flight, or nothing is in flight. Meanwhile it publishes the messages whose ack
// failed again, synchronously, and every message in flight again when no ack came within
// ackTimeout.
func (e *Enqueuer) wait(ctx context.Context, wantFree, wantBytes int) error {
	if e.timer == nil {
		e.timer = time.NewTimer(ackTimeout)
	} else {
		e.timer.Reset(ackTimeout)
	}
	defer e.timer.Stop()
	settled := e.settled
	for {
		if len(e.failed) > 0 {
			return e.retryFailed(ctx)
		}
		if err := e.resendInFlight(); err != nil {
			return err
		}
		if e.inflight == 0 || len(e.free) >= wantFree && e.bytes <= wantBytes {
			return nil
		}
		select {
		case m := <-e.acks:
			e.take(m)
		case <-e.timer.C:
			switch {
			case e.js.Conn().IsClosed():
				return &PublishError{ContactID: e.oldestID(), Err: nats.ErrConnectionClosed}
			case e.settled == settled && len(e.failed) == 0:
				// No ack for ackTimeout: lost with a connection, or never coming.
				e.leaveInOrder()
				e.resend = false
				if err := e.republish(); err != nil {
					return err
				}
			}
			settled = e.settled
			e.timer.Reset(ackTimeout)
		case <-ctx.Done():
			return &PublishError{ContactID: e.oldestID(), Err: ctx.Err()}
		}
	}
}

// retryFailed publishes the failed messages again, synchronously, in order.
func (e *Enqueuer) retryFailed(ctx context.Context) error {
	for len(e.failed) > 0 {
		n := e.failed[0]
		s := &e.slots[n]
		m := &nats.Msg{Subject: e.subject, Header: nats.Header{jetstream.MsgIDHeader: []string{s.id}}, Data: s.data}
		ack, err := e.js.PublishMsg(ctx, m,
			jetstream.WithRetryAttempts(retryPublishAttempts),
			jetstream.WithRetryWait(250*time.Millisecond))
		if err != nil {
			return &PublishError{ContactID: s.id, Err: err}
		}
		e.failed = e.failed[1:]
		e.count(ack.Duplicate) // the failed publish stored nothing
		e.release(n)
	}
	e.failed = nil
	return nil
}

// republish publishes every message in flight again, oldest first, with new tokens: the
// first ack of any publish of a message settles it.
func (e *Enqueuer) republish() error {
	var busy []int32
	for n := range e.slots {
		if e.slots[n].state == slotInflight {
			busy = append(busy, int32(n))
		}
	}
	slices.SortFunc(busy, func(a, b int32) int { return cmp.Compare(e.slots[a].first, e.slots[b].first) })
	for _, n := range busy {
		e.issue(n)
		if err := e.publish(n); err != nil {
			return err
		}
	}
	return nil
}

// oldestID names the oldest contact in flight, for an error.
func (e *Enqueuer) oldestID() string {
	id, first := "", uint64(0)
	for i := range e.slots {
		if s := &e.slots[i]; s.state != slotFree && (id == "" || s.first < first) {
			id, first = s.id, s.first
		}
	}
	return id
}

// Flush waits for every outstanding ack and returns the totals. On error (ctx done, a
// message that could not be published) the totals count what was confirmed, and Pending
// what was not.
func (e *Enqueuer) Flush(ctx context.Context) (EnqueueStats, error) {
	if e.sub == nil && e.inflight > 0 { // closed meanwhile: the messages are published again
		if err := e.subscribe(); err != nil {
			return e.stats, &PublishError{ContactID: e.oldestID(), Err: err}
		}
	}
	e.drain()
	for e.inflight > 0 {
		if err := e.wait(ctx, e.window, 0); err != nil {
			return e.stats, err
		}
	}
	e.Close()
	return e.stats, nil
}

// Stats returns the totals so far.
func (e *Enqueuer) Stats() EnqueueStats { return e.stats }

// Pending is the number of messages published whose ack has not come yet.
func (e *Enqueuer) Pending() int { return e.inflight }

// Close stops listening for acks; messages still in flight stay unconfirmed. A later Add
// listens again.
func (e *Enqueuer) Close() {
	if e.sub != nil {
		_ = e.sub.Unsubscribe()
		e.sub = nil
	}
}
