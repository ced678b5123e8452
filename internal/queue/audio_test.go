package queue_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// audioBucket creates an Object Store bucket (cfg's, with a name and file storage filled in)
// and an AudioStore on it.
func audioBucket(t testing.TB, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (*queue.AudioStore, jetstream.ObjectStore) {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = "audio"
	}
	cfg.Storage = jetstream.FileStorage
	obs, err := js.CreateOrUpdateObjectStore(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create object store: %v", err)
	}
	return queue.NewAudioStore(js, obs, cfg.Bucket), obs
}

// audioStreamMsgs is how many messages (chunks and metas) the bucket's stream holds.
func audioStreamMsgs(t testing.TB, js jetstream.JetStream, bucket string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "OBJ_"+bucket)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// audioRawMeta is name's meta message as stored.
func audioRawMeta(t testing.TB, js jetstream.JetStream, bucket, name string) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(context.Background(), "OBJ_"+bucket)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), "$O."+bucket+".M."+base64.URLEncoding.EncodeToString([]byte(name)))
	if err != nil {
		t.Fatalf("meta of %q: %v", name, err)
	}
	return m
}

func audioData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkAudio reads name back with nats.go's reader (which verifies the digest) and checks the
// bytes, the info and AudioStore.InfoWithMetadata.
func checkAudio(t *testing.T, store *queue.AudioStore, obs jetstream.ObjectStore, name, format string, want []byte) *jetstream.ObjectInfo {
	t.Helper()
	ctx := context.Background()
	got, err := obs.GetBytes(ctx, name)
	if err != nil {
		t.Fatalf("nats.go GetBytes(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("nats.go GetBytes(%q) = %d bytes, want the %d stored", name, len(got), len(want))
	}
	info, err := obs.GetInfo(ctx, name)
	if err != nil {
		t.Fatalf("nats.go GetInfo(%q): %v", name, err)
	}
	chunks := (len(want) + 128*1024 - 1) / (128 * 1024)
	if info.Size != uint64(len(want)) || info.Chunks != uint32(chunks) || info.Description != format || info.Name != name || info.Deleted {
		t.Fatalf("nats.go GetInfo(%q) = size %d, chunks %d, description %q, name %q, deleted %v; want %d, %d, %q, %q, false",
			name, info.Size, info.Chunks, info.Description, info.Name, info.Deleted, len(want), chunks, format, name)
	}
	if gotFormat, _, ok, err := store.InfoWithMetadata(ctx, name); err != nil || !ok || gotFormat != format {
		t.Fatalf("Info(%q) = %q, %v, %v; want %q, true, nil", name, gotFormat, ok, err, format)
	}
	return info
}

func TestAudioPutIsReadByNatsGo(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx := context.Background()

	sizes := []int{0, 1, 128 * 1024, 128*1024 + 1, 700 * 1024}
	var chunks uint64
	for _, size := range sizes {
		name := fmt.Sprintf("contact-%d", size)
		data := audioData(size, 1)
		if err := store.PutWithMetadata(ctx, name, "audio/mpeg", nil, data, false); err != nil {
			t.Fatalf("Put %d bytes: %v", size, err)
		}
		chunks += uint64(checkAudio(t, store, obs, name, "audio/mpeg", data).Chunks)
	}
	if got, want := audioStreamMsgs(t, js, "audio"), chunks+uint64(len(sizes)); got != want {
		t.Errorf("stream holds %d messages, want %d chunks and %d metas", got, chunks, len(sizes))
	}
	list, err := obs.List(ctx)
	if err != nil || len(list) != len(sizes) {
		t.Errorf("nats.go List = %d objects, %v; want %d", len(list), err, len(sizes))
	}
}

// TestAudioMetaIsWhatNatsGoWrites compares the stored meta with nats.go's, byte for byte but
// the nuid, for plain names and names encoding/json escapes.
func TestAudioMetaIsWhatNatsGoWrites(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx := context.Background()

	for _, tc := range []struct{ name, format string }{
		{"contact-1", "audio/mpeg"},
		{"contact-2", ""},
		{`a "quoted" <name> & é` + "\x01\u2028", "mp3_44100_128 <&>"},
	} {
		data := audioData(300*1024, 2)
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: tc.name, Description: tc.format}, bytes.NewReader(data)); err != nil {
			t.Fatalf("nats.go Put: %v", err)
		}
		theirs := audioRawMeta(t, js, "audio", tc.name)
		theirInfo, err := obs.GetInfo(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutWithMetadata(ctx, tc.name, tc.format, nil, data, true); err != nil {
			t.Fatalf("Put: %v", err)
		}
		ours := audioRawMeta(t, js, "audio", tc.name)
		ourInfo := checkAudio(t, store, obs, tc.name, tc.format, data)
		want := strings.Replace(string(theirs.Data), theirInfo.NUID, ourInfo.NUID, 1)
		if string(ours.Data) != want {
			t.Errorf("meta of %q:\n got %s\nwant %s", tc.name, ours.Data, want)
		}
		if got := ours.Header.Get(jetstream.MsgRollup); got != jetstream.MsgRollupSubject {
			t.Errorf("meta of %q has %s %q, want %q", tc.name, jetstream.MsgRollup, got, jetstream.MsgRollupSubject)
		}
		// nats.go replaces it in turn, purging our chunks.
		if _, err := obs.PutBytes(ctx, tc.name, data[:10]); err != nil {
			t.Fatalf("nats.go Put over ours: %v", err)
		}
	}
	if got := audioStreamMsgs(t, js, "audio"); got != 6 {
		t.Errorf("stream holds %d messages, want 3 metas and their 3 chunks", got)
	}
}

func TestAudioReplacePurgesTheOldChunks(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx := context.Background()

	if err := store.PutWithMetadata(ctx, "c1", "audio/mpeg", nil, audioData(700*1024, 3), false); err != nil {
		t.Fatal(err)
	}
	newer := audioData(200*1024, 4)
	if err := store.PutWithMetadata(ctx, "c1", "audio/wav", nil, newer, true); err != nil {
		t.Fatalf("replace: %v", err)
	}
	info := checkAudio(t, store, obs, "c1", "audio/wav", newer)
	if got := audioStreamMsgs(t, js, "audio"); got != uint64(info.Chunks)+1 {
		t.Errorf("stream holds %d messages, want the %d new chunks and the meta", got, info.Chunks)
	}

	// A name said to be new that is not (a redelivery after a lost ack) is replaced all the
	// same, its old chunks purged.
	newest := audioData(5, 5)
	if err := store.PutWithMetadata(ctx, "c1", "audio/ogg", nil, newest, false); err != nil {
		t.Fatalf("Put of an existing name with replace=false: %v", err)
	}
	checkAudio(t, store, obs, "c1", "audio/ogg", newest)
	if got := audioStreamMsgs(t, js, "audio"); got != 2 {
		t.Errorf("stream holds %d messages, want 1 chunk and the meta", got)
	}

	// And after a nats.go Delete (a deleted marker), a Put said to be new stores it again.
	if err := obs.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := store.PutWithMetadata(ctx, "c1", "audio/mpeg", nil, newer, false); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
	checkAudio(t, store, obs, "c1", "audio/mpeg", newer)
	if got := audioStreamMsgs(t, js, "audio"); got != uint64(info.Chunks)+1 {
		t.Errorf("stream holds %d messages, want %d chunks and the meta", got, info.Chunks)
	}
}

// TestAudioConcurrentPutsOfOneName has 32 writers replace one name at once (and 64 more
// write new names): each Put succeeds, the name reads as one of them, and no writer's chunks
// are left behind.
func TestAudioConcurrentPutsOfOneName(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx := context.Background()

	const writers, rounds, newNames = 32, 2, 64
	payloads := make(map[string][]byte, newNames)
	for i := range newNames {
		payloads[fmt.Sprint(i)] = audioData(1+i*5000, uint64(i)) // up to 3 chunks
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds+newNames)
	for i := range writers {
		wg.Go(func() {
			for r := range rounds {
				if err := store.PutWithMetadata(ctx, "shared", fmt.Sprint(i), nil, payloads[fmt.Sprint(i)], (i+r)%2 == 0); err != nil {
					errs <- err
				}
			}
		})
	}
	// Meanwhile, distinct new names.
	for i := range newNames {
		wg.Go(func() {
			if err := store.PutWithMetadata(ctx, fmt.Sprintf("own-%d", i), "audio/mpeg", nil, payloads[fmt.Sprint(i)], false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}

	format, _, ok, err := store.InfoWithMetadata(ctx, "shared")
	if err != nil || !ok {
		t.Fatalf("Info = %q, %v, %v", format, ok, err)
	}
	info := checkAudio(t, store, obs, "shared", format, payloads[format])
	var ownChunks uint64
	for i := range newNames {
		ownChunks += uint64(checkAudio(t, store, obs, fmt.Sprintf("own-%d", i), "audio/mpeg", payloads[fmt.Sprint(i)]).Chunks)
	}
	if got, want := audioStreamMsgs(t, js, "audio"), uint64(info.Chunks)+1+ownChunks+newNames; got != want {
		t.Errorf("stream holds %d messages, want %d: chunks of replaced objects were left behind", got, want)
	}
}

func TestAudioPutWithEndedContextStoresNothing(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	for _, replace := range []bool{false, true} {
		err := store.PutWithMetadata(ctx, "c1", "audio/mpeg", nil, audioData(300*1024, 6), replace)
		var aerr *queue.AudioError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &aerr) || !strings.Contains(err.Error(), "audio/c1") {
			t.Errorf("Put(replace=%v) with a cancelled context = %v, want an *AudioError naming audio/c1 wrapping context.Canceled", replace, err)
		}
	}
	if got := audioStreamMsgs(t, js, "audio"); got != 0 {
		t.Errorf("stream holds %d messages, want none", got)
	}
	if _, err := obs.GetInfo(context.Background(), "c1"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("nats.go GetInfo = %v, want ErrObjectNotFound", err)
	}
}

// cancelOnMeta is a JetStream context that calls cancel once a meta message is published,
// ending a Put's context while its acks are out.
type cancelOnMeta struct {
	jetstream.JetStream
	cancel context.CancelFunc
}

func (c cancelOnMeta) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := c.JetStream.PublishMsgAsync(m, opts...)
	if strings.Contains(m.Subject, ".M.") {
		c.cancel()
	}
	return f, err
}

// TestAudioPutEndedWhileAcksAreOut ends Put's context right after the meta is published:
// Put either finds every ack in (the object is stored) or undoes what landed (the name reads
// as before), and either way no chunk is left that no meta names.
func TestAudioPutEndedWhileAcksAreOut(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	cur := audioData(1000, 11)
	if err := store.PutWithMetadata(context.Background(), "c1", "v0", nil, cur, false); err != nil {
		t.Fatal(err)
	}
	curFormat := "v0"
	var stored, undone int
	for i := range 40 {
		ctx, cancel := context.WithCancel(context.Background())
		racing := queue.NewAudioStore(cancelOnMeta{js, cancel}, obs, "audio")
		data, format := audioData(200*1024, uint64(i)), fmt.Sprintf("v%d", i+1)
		err := racing.PutWithMetadata(ctx, "c1", format, nil, data, i%2 == 0)
		cancel()
		var aerr *queue.AudioError
		switch {
		case err == nil:
			stored++
			cur, curFormat = data, format
		case errors.Is(err, context.Canceled) && errors.As(err, &aerr) && aerr.Cleanup == nil:
			undone++
		default:
			t.Fatalf("Put ended while acks are out = %v, want nil or an *AudioError of context.Canceled, cleaned up", err)
		}
		info := checkAudio(t, store, obs, "c1", curFormat, cur)
		if got := audioStreamMsgs(t, js, "audio"); got != uint64(info.Chunks)+1 {
			t.Fatalf("after %d Puts stream holds %d messages, want %d chunks and the meta", i+1, got, info.Chunks)
		}
	}
	t.Logf("%d Puts stored, %d undone", stored, undone)
	if undone == 0 {
		t.Error("no Put saw its context end: the test did not test undoing")
	}
}

func TestAudioInfoOfAMissingOrDeletedName(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{})
	ctx := context.Background()

	if format, _, ok, err := store.InfoWithMetadata(ctx, "nobody"); err != nil || ok || format != "" {
		t.Errorf("Info of a missing name = %q, %v, %v; want \"\", false, nil", format, ok, err)
	}
	if err := store.PutWithMetadata(ctx, "c1", "audio/mpeg", nil, []byte("abc"), false); err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if format, _, ok, err := store.InfoWithMetadata(ctx, "c1"); err != nil || ok || format != "" {
		t.Errorf("Info of a deleted name = %q, %v, %v; want \"\", false, nil", format, ok, err)
	}
	if err := store.PutWithMetadata(ctx, "", "audio/mpeg", nil, nil, false); !errors.Is(err, jetstream.ErrNameRequired) {
		t.Errorf("Put of an empty name = %v, want ErrNameRequired", err)
	}
}

// TestAudioFailedChunkLeavesTheNameAsItWas has the server refuse a chunk (over the bucket's
// max bytes) but store the small meta after it: Put puts the previous meta back (or marks a
// new name deleted), purges what it wrote, and the name reads as before.
func TestAudioFailedChunkLeavesTheNameAsItWas(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, obs := audioBucket(t, js, jetstream.ObjectStoreConfig{MaxBytes: 64 * 1024})
	ctx := context.Background()

	old := audioData(1000, 7)
	if err := store.PutWithMetadata(ctx, "c1", "audio/mpeg", nil, old, false); err != nil {
		t.Fatal(err)
	}
	for _, replace := range []bool{true, false} {
		err := store.PutWithMetadata(ctx, "c1", "audio/wav", nil, audioData(100*1024, 8), replace)
		var aerr *queue.AudioError
		var apiErr *jetstream.APIError
		if !errors.As(err, &aerr) || aerr.Cleanup != nil || !errors.As(err, &apiErr) {
			t.Fatalf("Put(replace=%v) over max bytes = %v, want an *AudioError of the server's refusal, cleaned up", replace, err)
		}
		checkAudio(t, store, obs, "c1", "audio/mpeg", old)
		if got := audioStreamMsgs(t, js, "audio"); got != 2 {
			t.Errorf("stream holds %d messages, want the old chunk and meta", got)
		}
	}

	if err := store.PutWithMetadata(ctx, "c2", "audio/wav", nil, audioData(100*1024, 9), false); err == nil {
		t.Fatal("Put of a new name over max bytes succeeded")
	}
	if format, _, ok, err := store.InfoWithMetadata(ctx, "c2"); err != nil || ok {
		t.Errorf("Info of the failed new name = %q, %v, %v; want not found", format, ok, err)
	}
	if _, err := obs.GetInfo(ctx, "c2"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("nats.go GetInfo of the failed new name = %v, want ErrObjectNotFound", err)
	}
	if got := audioStreamMsgs(t, js, "audio"); got != 3 {
		t.Errorf("stream holds %d messages, want the old object and c2's deleted marker", got)
	}
	// The marker does not stand in the way of a later Put.
	if err := store.PutWithMetadata(ctx, "c2", "audio/wav", nil, []byte("ok"), false); err != nil {
		t.Fatalf("Put after a failed one: %v", err)
	}
	checkAudio(t, store, obs, "c2", "audio/wav", []byte("ok"))
}

// BenchmarkAudioPut stores 4 KiB objects with nats.go's ObjectStore.PutBytes and with
// AudioStore.PutWithMetadata: new names (what the worker does per contact), one name replaced, and new
// names from 64 goroutines. allocs/op and cpu-µs/op count the whole process, the in-process
// server included; set AUDIO_BENCH_NATS_URL to a separate nats-server (JetStream enabled) to
// count the client alone.
func BenchmarkAudioPut(b *testing.B) {
	var js jetstream.JetStream
	if url := os.Getenv("AUDIO_BENCH_NATS_URL"); url != "" {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		if js, err = jetstream.New(nc); err != nil {
			b.Fatal(err)
		}
	} else {
		_, js = natstest.Connect(b, natstest.Start(b))
	}
	data := audioData(4*1024, 10)
	ctx := context.Background()
	var buckets atomic.Int64
	bucket := func(b *testing.B) (*queue.AudioStore, jetstream.ObjectStore) {
		name := fmt.Sprintf("bench_%d_%d", time.Now().UnixNano(), buckets.Add(1))
		store, obs := audioBucket(b, js, jetstream.ObjectStoreConfig{Bucket: name})
		b.Cleanup(func() { _ = js.DeleteObjectStore(context.Background(), name) })
		return store, obs
	}
	puts := []struct {
		name string
		put  func(store *queue.AudioStore, obs jetstream.ObjectStore, name string, replace bool) error
	}{
		{"nats.go", func(_ *queue.AudioStore, obs jetstream.ObjectStore, name string, _ bool) error {
			_, err := obs.PutBytes(ctx, name, data)
			return err
		}},
		{"AudioStore", func(store *queue.AudioStore, _ jetstream.ObjectStore, name string, replace bool) error {
			return store.PutWithMetadata(ctx, name, "audio/mpeg", nil, data, replace)
		}},
	}
	for _, mode := range []string{"new", "replace", "new-64-goroutines"} {
		for _, p := range puts {
			b.Run(mode+"/"+p.name, func(b *testing.B) {
				store, obs := bucket(b)
				b.ReportAllocs()
				cpu := startCPU()
				b.ResetTimer()
				switch mode {
				case "new":
					for i := range b.N {
						if err := p.put(store, obs, "contact-"+fmt.Sprint(i), false); err != nil {
							b.Fatal(err)
						}
					}
				case "replace":
					for range b.N {
						if err := p.put(store, obs, "contact", true); err != nil {
							b.Fatal(err)
						}
					}
				default:
					var n atomic.Int64
					b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := p.put(store, obs, "contact-"+fmt.Sprint(n.Add(1)), false); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				if c := cpu(); !math.IsNaN(c) {
					b.ReportMetric(c/float64(b.N)*1e6, "cpu-µs/op")
				}
			})
		}
	}
}

// startCPU returns a function reporting the CPU seconds (user and system) the process spent
// since, or NaN where /proc/self/stat cannot tell (it counts in clock ticks, 1/100 s).
func startCPU() func() float64 {
	read := func() float64 {
		stat, err := os.ReadFile("/proc/self/stat")
		if err != nil {
			return math.NaN()
		}
		// Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return math.NaN()
		}
		utime, err1 := strconv.ParseFloat(f[11], 64)
		stime, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return math.NaN()
		}
		return (utime + stime) / 100
	}
	start := read()
	return func() float64 { return read() - start }
}
