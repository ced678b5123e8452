package queue

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// audioChunkSize is nats.go's default Object Store chunk size: a chunk stays well under the
// server's max payload (1 MiB by default) whatever the audio's size.
const audioChunkSize = 128 * 1024

// audioCleanupTimeout bounds undoing a failed Put (waiting for the acks still out, putting
// the previous meta back, purging the new chunks), which runs after the caller's context may
// have ended.
const audioCleanupTimeout = 2 * time.Second

// audioRollupHeader is the meta's Nats-Rollup value: the new meta replaces the name's old one.
var audioRollupHeader = []string{jetstream.MsgRollupSubject}

// audioNewNameHeader is the meta header of a Put that promises a new name: rollup, and the
// server refuses it when the name has a meta already (then Put reads it and retries as a
// replace). Shared by every such Put: nats.go only reads a message's headers.
var audioNewNameHeader = nats.Header{
	jetstream.MsgRollup:                 audioRollupHeader,
	jetstream.ExpectedLastSubjSeqHeader: {"0"},
}

// AudioStore writes synthesized audio into an Object Store bucket in the standard layout
// (NATS ADR-20, as nats.go writes it: chunks on $O.<bucket>.C.<nuid>, then the ObjectInfo on
// $O.<bucket>.M.<base64url name> with a subject rollup), so any Object Store reader can Get,
// GetInfo, List or Watch it; but it writes more cheaply than nats.go's ObjectStore.Put, which
// per call reads the current meta, creates a JetStream context with its own reply
// subscription and copies the data into a fresh 128 KiB buffer. AudioStore publishes the
// caller's bytes as they are through one long-lived JetStream context, and reads nothing
// before writing a name the caller says is new.
//
// Every meta write is a compare-and-swap on the name's last meta (Nats-Expected-Last-
// Subject-Sequence), so concurrent writers of one name never leave chunks that no meta names:
// whoever replaces a meta purges its chunks. It is safe for concurrent use.
type AudioStore struct {
	js          jetstream.JetStream
	obs         jetstream.ObjectStore
	bucket      string
	streamName  string        // OBJ_<bucket>
	chunkPrefix string        // $O.<bucket>.C.
	metaPrefix  string        // $O.<bucket>.M.
	bucketJSON  string        // the bucket as a JSON string, quotes included
	timeout     time.Duration // bounds a Put whose context has no deadline

	mu     sync.Mutex
	stream jetstream.Stream // looked up on first need: only replacing and cleaning up use it
}

// NewAudioStore writes through js (the caller's own, long-lived context) into the bucket obs
// is a handle of (from CreateOrUpdateObjectStore).
func NewAudioStore(js jetstream.JetStream, obs jetstream.ObjectStore, bucket string) *AudioStore {
	return &AudioStore{
		js:          js,
		obs:         obs,
		bucket:      bucket,
		streamName:  "OBJ_" + bucket,
		chunkPrefix: "$O." + bucket + ".C.",
		metaPrefix:  "$O." + bucket + ".M.",
		bucketJSON:  string(appendJSONString(nil, bucket)),
		timeout:     js.Options().DefaultTimeout,
	}
}

// AudioError is a failed AudioStore call on one object.
type AudioError struct {
	Object string // <bucket>/<name>
	Op     string // what failed, e.g. "publish chunk 2 of 6", "store meta"
	Err    error
	// Cleanup is why undoing a failed Put did not finish, nil when it did: new chunks, or a
	// meta naming them, may be left until the bucket's TTL removes them.
	Cleanup error
}

func (e *AudioError) Error() string {
	msg := "audio object " + e.Object + ": " + e.Op + ": " + e.Err.Error()
	if e.Cleanup != nil {
		msg += " (cleanup failed: " + e.Cleanup.Error() + ")"
	}
	return msg
}

func (e *AudioError) Unwrap() error { return e.Err }

func (a *AudioStore) fail(name, op string, err error) *AudioError {
	return &AudioError{Object: a.bucket + "/" + name, Op: op, Err: err}
}

// PutWithMetadata stores data under name with description format and metadata (ObjectMeta.
// Metadata; nil for none). replace=false promises no object of that name exists (a contact's
// first audio): nothing is read first; should one exist all the same (a redelivery after a
// lost ack), the server refuses the meta and the object is replaced as if replace were true.
// replace=true looks up the current object first and purges its chunks once the new meta is
// acked (as nats.go does).
//
// The chunks and the meta are published without waiting in between, then their acks are
// awaited (until ctx's end; with no deadline, for the JetStream context's default timeout).
// On a failure or ctx's end it undoes what landed, best effort: it puts the previous meta
// back (or a deleted marker if there was none) when the new one was stored, purges the new
// chunks, and returns an *AudioError; the name then reads as before. data must not change
// until PutWithMetadata returns.
func (a *AudioStore) PutWithMetadata(ctx context.Context, name, format string, metadata map[string]string, data []byte, replace bool) error {
	if name == "" {
		return a.fail(name, "check the name", jetstream.ErrNameRequired)
	}
	if err := ctx.Err(); err != nil {
		return a.fail(name, "start", err)
	}
	// nats.go's calls bound themselves by the default timeout; the wait for acks needs its own
	// bound (a timer: cheaper than a context).
	var expire <-chan time.Time
	if _, ok := ctx.Deadline(); !ok && a.timeout > 0 {
		t := time.NewTimer(a.timeout)
		defer t.Stop()
		expire = t.C
	}

	id := nuid.Next()
	p := audioPut{a: a, name: name, id: id, metaSubj: a.metaSubject(name), chunkSubj: a.chunkPrefix + id, metaIdx: -1}
	header := audioNewNameHeader
	if replace {
		prev, err := a.current(ctx, p.metaSubj)
		if err != nil {
			return a.fail(name, "look up the current object", err)
		}
		p.prev = prev
		header = audioMetaHeader(prev.seq)
	}

	chunks := (len(data) + audioChunkSize - 1) / audioChunkSize
	msgs := make([]nats.Msg, chunks+1)
	p.futs = make([]jetstream.PubAckFuture, 0, chunks+1)
	for i := range chunks {
		m := &msgs[i]
		m.Subject = p.chunkSubj
		m.Data = data[i*audioChunkSize : min((i+1)*audioChunkSize, len(data))]
		f, err := a.js.PublishMsgAsync(m)
		if err != nil {
			return p.undo(ctx, fmt.Sprintf("publish chunk %d of %d", i+1, chunks), err)
		}
		p.futs = append(p.futs, f)
		p.chunks++
	}
	meta := &msgs[chunks]
	meta.Subject, meta.Header = p.metaSubj, header
	meta.Data = a.appendMeta(make([]byte, 0, 256+len(name)+len(format)+len(a.bucketJSON)), name, format, metadata, id, data, chunks)
	f, err := a.js.PublishMsgAsync(meta)
	if err != nil {
		return p.undo(ctx, "publish meta", err)
	}
	p.metaIdx = len(p.futs)
	p.futs = append(p.futs, f)

	if err := p.await(ctx, expire); err != nil {
		return p.undo(ctx, "await acks", err)
	}
	switch {
	case p.chunkErr != nil:
		return p.undo(ctx, "store chunks", p.chunkErr)
	case p.metaErr != nil && !isWrongLastSequence(p.metaErr):
		return p.undo(ctx, "store meta", p.metaErr)
	case p.metaErr != nil:
		// The name's meta is not the one expected: replaced meanwhile by another writer, or
		// there when the caller said it would not be. The chunks are in: swap the meta in
		// against the name's current one.
		if err := p.swapMeta(ctx, expire, meta.Data); err != nil {
			return p.undo(ctx, "store meta", err)
		}
	}
	if p.prev.nuid != "" {
		// Best effort, as nats.go: the object is stored; chunks left over expire with the
		// bucket's TTL.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), audioCleanupTimeout)
		_ = a.purge(cctx, p.prev.nuid)
		cancel()
	}
	return nil
}

// InfoWithMetadata returns (format=description, metadata, ok) of the stored object, ok false
// when there is none (ErrObjectNotFound or a deleted object).
func (a *AudioStore) InfoWithMetadata(ctx context.Context, name string) (format string, metadata map[string]string, ok bool, err error) {
	info, err := a.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, a.fail(name, "read info", err)
	}
	return info.Description, info.Metadata, true, nil
}

// audioPrev is a name's meta as read before replacing it.
type audioPrev struct {
	seq  uint64 // its stream sequence; 0 for no meta
	raw  []byte // its data, put back when the replacing Put fails
	nuid string // the nuid of its chunks; "" for none (no meta, or a deleted object)
}

// audioPut is one Put's progress, for awaiting its acks and undoing it.
type audioPut struct {
	a                   *AudioStore
	name, id            string
	metaSubj, chunkSubj string
	prev                audioPrev // the meta the new one replaces
	futs                []jetstream.PubAckFuture
	metaIdx             int // index of the meta's future in futs; -1 before it is published
	done                int // futs[:done] are resolved
	chunkErr, metaErr   error
	metaAck             *jetstream.PubAck
	metaUnknown         bool // a meta publish whose outcome is unknown (no reply)
	chunks              int  // chunks published
}

// await collects the futures' outcomes in order until ctx ends or expire fires, and then
// returns why.
func (p *audioPut) await(ctx context.Context, expire <-chan time.Time) error {
	for ; p.done < len(p.futs); p.done++ {
		f := p.futs[p.done]
		select {
		case ack := <-f.Ok():
			if p.done == p.metaIdx {
				p.metaAck = ack
			}
		case err := <-f.Err():
			if p.done == p.metaIdx {
				p.metaErr = err
			} else if p.chunkErr == nil {
				p.chunkErr = fmt.Errorf("chunk %d: %w", p.done+1, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-expire:
			return jetstream.ErrAsyncPublishTimeout
		}
	}
	return nil
}

// swapMeta stores the meta data against the name's current meta, reading it again for as
// long as other writers replace it first (one of them succeeds each round, so this ends).
func (p *audioPut) swapMeta(ctx context.Context, expire <-chan time.Time, data []byte) error {
	p.metaErr = nil
	for {
		select {
		case <-expire:
			return jetstream.ErrAsyncPublishTimeout
		default:
		}
		prev, err := p.a.current(ctx, p.metaSubj)
		if err != nil {
			return fmt.Errorf("look up the current object: %w", err)
		}
		p.prev = prev
		m := &nats.Msg{Subject: p.metaSubj, Data: data, Header: audioMetaHeader(prev.seq)}
		ack, err := p.a.js.PublishMsg(ctx, m)
		switch {
		case err == nil:
			p.metaAck = ack
			return nil
		case isWrongLastSequence(err):
			continue
		default:
			var apiErr *jetstream.APIError
			p.metaUnknown = !errors.As(err, &apiErr) // no reply: it may have been stored
			return err
		}
	}
}

// undo ends a failed Put: it waits (briefly) for the acks still out, puts the previous meta
// back if the new one was stored, purges the new chunks, and returns the error.
func (p *audioPut) undo(ctx context.Context, op string, err error) error {
	e := p.a.fail(p.name, op, err)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), audioCleanupTimeout)
	defer cancel()
	_ = p.await(cctx, nil) // what is still out after this is looked up below

	var cleanup []error
	var metaSeq uint64
	switch {
	case p.metaAck != nil:
		metaSeq = p.metaAck.Sequence
	case p.metaUnknown || (p.metaIdx >= 0 && p.done <= p.metaIdx):
		// Whether the meta landed is unknown: look.
		cur, lerr := p.a.current(cctx, p.metaSubj)
		if lerr != nil {
			cleanup = append(cleanup, fmt.Errorf("look up the meta: %w", lerr))
		} else if cur.nuid == p.id {
			metaSeq = cur.seq
		}
	}
	if metaSeq != 0 {
		rerr := p.restore(cctx, metaSeq)
		switch {
		case isWrongLastSequence(rerr):
			// Another writer replaced the new meta (and purges its chunks): the previous
			// object is gone for good, so its chunks are ours to purge.
			if p.prev.nuid != "" {
				if perr := p.a.purge(cctx, p.prev.nuid); perr != nil {
					cleanup = append(cleanup, fmt.Errorf("purge the replaced object's chunks: %w", perr))
				}
			}
		case rerr != nil:
			cleanup = append(cleanup, fmt.Errorf("put the previous meta back: %w", rerr))
		}
	}
	if p.chunks > 0 {
		if perr := p.a.purge(cctx, p.id); perr != nil {
			cleanup = append(cleanup, fmt.Errorf("purge the new chunks: %w", perr))
		}
	}
	e.Cleanup = errors.Join(cleanup...)
	return e
}

// restore replaces the new meta (at stream sequence seq) with the one it replaced, or with a
// deleted marker when there was none, so the name reads as before the Put.
func (p *audioPut) restore(ctx context.Context, seq uint64) error {
	data := p.prev.raw
	if p.prev.seq == 0 {
		var err error
		data, err = json.Marshal(jetstream.ObjectInfo{
			ObjectMeta: jetstream.ObjectMeta{Name: p.name},
			Bucket:     p.a.bucket, NUID: p.id, Deleted: true,
		})
		if err != nil {
			return err
		}
	}
	_, err := p.a.js.PublishMsg(ctx, &nats.Msg{Subject: p.metaSubj, Data: data, Header: audioMetaHeader(seq)})
	return err
}

// current reads the name's last meta (any; a deleted marker included).
func (a *AudioStore) current(ctx context.Context, metaSubj string) (audioPrev, error) {
	st, err := a.streamHandle(ctx)
	if err != nil {
		return audioPrev{}, err
	}
	m, err := st.GetLastMsgForSubject(ctx, metaSubj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return audioPrev{}, nil
	}
	if err != nil {
		return audioPrev{}, err
	}
	prev := audioPrev{seq: m.Sequence, raw: m.Data}
	var info struct {
		NUID    string `json:"nuid"`
		Deleted bool   `json:"deleted"`
	}
	// An unreadable meta names no chunks we could purge; it is still replaced.
	if json.Unmarshal(m.Data, &info) == nil && !info.Deleted {
		prev.nuid = info.NUID
	}
	return prev, nil
}

// purge removes the chunks of the object whose nuid is id.
func (a *AudioStore) purge(ctx context.Context, id string) error {
	st, err := a.streamHandle(ctx)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(a.chunkPrefix+id))
}

// streamHandle returns the bucket's stream, looking it up once (a failed look-up is retried
// on the next call).
func (a *AudioStore) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stream != nil {
		return a.stream, nil
	}
	st, err := a.js.Stream(ctx, a.streamName)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", a.streamName, err)
	}
	a.stream = st
	return st, nil
}

// metaSubject is $O.<bucket>.M.<base64url(name)>, as nats.go encodes it.
func (a *AudioStore) metaSubject(name string) string {
	var b strings.Builder
	b.Grow(len(a.metaPrefix) + base64.URLEncoding.EncodedLen(len(name)))
	b.WriteString(a.metaPrefix)
	// Encode 30 bytes (a multiple of 3: no padding inside) at a time through a stack buffer,
	// so the only allocation is the subject's.
	var enc [40]byte
	for len(name) > 0 {
		n := min(len(name), 30)
		k := base64.URLEncoding.EncodedLen(n)
		base64.URLEncoding.Encode(enc[:k], []byte(name[:n]))
		b.Write(enc[:k])
		name = name[n:]
	}
	return b.String()
}

// audioMetaHeader is the header of a meta replacing the one at stream sequence seq (0: none).
func audioMetaHeader(seq uint64) nats.Header {
	if seq == 0 {
		return audioNewNameHeader
	}
	return nats.Header{
		jetstream.MsgRollup:                 audioRollupHeader,
		jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(seq, 10)},
	}
}

// isWrongLastSequence reports the server refusing a write whose expected last sequence was
// not the subject's.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// appendMeta appends the ObjectInfo JSON of the object, byte for byte what nats.go's Put
// marshals (the test compares them) without reflection: name, description, options
// (max_chunk_size), bucket, nuid, size, mtime (zero: readers take the stored message's time),
// chunks and the SHA-256 digest Get verifies.
func (a *AudioStore) appendMeta(b []byte, name, format string, metadata map[string]string, id string, data []byte, chunks int) []byte {
	sum := sha256.Sum256(data)
	b = append(b, `{"name":`...)
	b = appendJSONString(b, name)
	if format != "" {
		b = append(b, `,"description":`...)
		b = appendJSONString(b, format)
	}
	if len(metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(metadata)) { // encoding/json sorts map keys
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, metadata[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"options":{"max_chunk_size":131072},"bucket":`...) // audioChunkSize
	b = append(b, a.bucketJSON...)
	b = append(b, `,"nuid":"`...)
	b = append(b, id...)
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, `,"mtime":"0001-01-01T00:00:00Z","chunks":`...)
	b = strconv.AppendInt(b, int64(chunks), 10)
	b = append(b, `,"digest":"SHA-256=`...)
	b = base64.URLEncoding.AppendEncode(b, sum[:])
	return append(b, `"}`...)
}

// appendJSONString appends s as encoding/json writes it: printable ASCII that needs no
// escaping (JSON's or encoding/json's HTML-safe <, >, &) as it is, anything else through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always marshals
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
