package call_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// worker is another worker sharing b's buckets. A negative lease is one that has lapsed
// already: the worker stalls past it, so another may take the contact over at once.
func (b bundle) worker(name string, lease time.Duration, llm call.Backend[call.ScriptWriter], tts call.Backend[call.Synthesizer]) *call.Pipeline {
	log := logrus.New()
	log.Out = io.Discard
	return &call.Pipeline{LLM: call.Step[call.ScriptWriter]{llm}, TTS: call.Step[call.Synthesizer]{tts},
		Retrier:     resilience.NewRetrier(resilience.RetryPolicy{MaxAttempts: 1}, nil, log),
		Checkpoints: b.checkpoints, Lease: lease, Worker: name, Log: log}
}

// countingLLM writes text and counts its calls.
func countingLLM(text string, calls *atomic.Int32) llmFunc {
	return func(context.Context, contact.Contact) (call.Script, error) {
		calls.Add(1)
		return call.Script{Text: text, Model: "gpt-5-mini", PromptTokens: 100, CompletionTokens: 40}, nil
	}
}

// recordingTTS remembers the scripts it spoke.
type recordingTTS struct {
	mu      sync.Mutex
	scripts []string
}

func (r *recordingTTS) Synthesize(_ context.Context, _ contact.Contact, s string) (call.Audio, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scripts = append(r.scripts, s)
	return call.Audio{Data: []byte("mp3"), Format: "mp3_44100_128"}, nil
}

func (r *recordingTTS) spoken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.scripts...)
}

func (b bundle) completedRecord(t *testing.T, id string) call.Record {
	t.Helper()
	rec, ok, err := b.checkpoints.Completed(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("completed record of %s: %v, %v", id, ok, err)
	}
	return rec
}

// Issue #11: the LLM answers, but meanwhile worker-a's lease lapsed and another worker took the
// contact. The paid script is kept in the checkpoint under the new holder's claim, and the
// next worker to run the contact completes it without calling the LLM.
func TestAScriptPaidAfterATakeoverIsNotPaidAgain(t *testing.T) {
	b := setup(t, nil, nil)
	ctx := context.Background()
	var aCalls, bCalls atomic.Int32
	var taker call.Claim
	aLLM := llmFunc(func(ctx context.Context, c contact.Contact) (call.Script, error) {
		// While the answer is on its way, another worker takes over the contact (and stalls
		// in turn: its lease lapses too).
		var err error
		if taker, err = b.checkpoints.Claim(ctx, c.ID, "taker", -time.Minute); err != nil {
			t.Errorf("the takeover: %v", err)
		}
		return countingLLM("from a", &aCalls)(ctx, c)
	})
	tts := &recordingTTS{}
	a := b.worker("worker-a", -time.Minute, call.Backend[call.ScriptWriter]{Provider: aLLM, Guard: guard("LLM")},
		call.Backend[call.Synthesizer]{Provider: tts, Guard: guard("TTS")})
	if _, err := a.Process(ctx, ada, &call.Progress{}); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("worker-a's Process = %v, want ErrClaimLost", err)
	}
	if taker == nil {
		t.FailNow()
	}
	cp, ok, err := b.checkpoints.Get(ctx, ada.ID)
	if err != nil || !ok || cp.Script == nil || cp.Script.Text != "from a" || cp.Spend[call.StepLLM].PromptTokens != 100 {
		t.Fatalf("checkpoint after the lost claim = %+v (%v, %v): the paid script was thrown away", cp, ok, err)
	}
	if held := taker.Checkpoint(); cp.Owner != held.Owner || !cp.LeaseUntil.Equal(held.LeaseUntil) {
		t.Fatalf("keeping the script changed the holder's claim: %+v, holder %+v", cp, held)
	}

	next := b.worker("worker-b", time.Minute, call.Backend[call.ScriptWriter]{Provider: countingLLM("from b", &bCalls), Guard: guard("LLM")},
		call.Backend[call.Synthesizer]{Provider: tts, Guard: guard("TTS")})
	if out, err := next.Process(ctx, ada, &call.Progress{}); err != nil || out != call.Completed {
		t.Fatalf("worker-b's Process = %v, %v", out, err)
	}
	if n := bCalls.Load(); n != 0 {
		t.Fatalf("worker-b called the LLM %d times for a script already paid for", n)
	}
	if got := tts.spoken(); len(got) != 1 || got[0] != "from a" {
		t.Fatalf("text-to-speech spoke %q, want worker-a's script once", got)
	}
	if rec := b.completedRecord(t, ada.ID); rec.ScriptChars != len("from a") || rec.Spend[call.StepLLM].PromptTokens != 100 {
		t.Fatalf("completed record = %+v", rec)
	}
}

// The holder took the contact over and was held (its LLM's breaker open) before paying for
// anything; worker-a, which lost the contact to it, keeps its paid script meanwhile. When the
// holder's run resumes it uses that script: the LLM is not called, and the holder's own
// writes keep the script.
func TestAHeldHolderUsesTheScriptKeptWhileItWaited(t *testing.T) {
	b := setup(t, nil, nil)
	ctx := context.Background()
	var aCalls, bCalls atomic.Int32
	tts := &recordingTTS{}
	bGuard := guard("LLM")
	// The holder's LLM breaker is open (threshold 1).
	_ = bGuard.Do(ctx, func(context.Context) error { return fault.Classify(fault.Facts{Provider: "LLM", Status: 503}) })
	if bGuard.Ready() {
		t.Fatal("test setup: the breaker did not open")
	}
	holder := b.worker("worker-b", time.Minute, call.Backend[call.ScriptWriter]{Provider: countingLLM("from b", &bCalls), Guard: bGuard},
		call.Backend[call.Synthesizer]{Provider: tts, Guard: guard("TTS")})
	bProg := &call.Progress{}

	aLLM := llmFunc(func(ctx context.Context, c contact.Contact) (call.Script, error) {
		// Meanwhile worker-b takes the contact over, and holds it for its open breaker.
		_, err := holder.Process(ctx, c, bProg)
		var open *resilience.OpenError
		if !errors.As(err, &open) {
			t.Errorf("worker-b's first run = %v, want its breaker open", err)
		}
		return countingLLM("from a", &aCalls)(ctx, c)
	})
	a := b.worker("worker-a", -time.Minute, call.Backend[call.ScriptWriter]{Provider: aLLM, Guard: guard("LLM")},
		call.Backend[call.Synthesizer]{Provider: tts, Guard: guard("TTS")})
	if _, err := a.Process(ctx, ada, &call.Progress{}); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("worker-a's Process = %v, want ErrClaimLost", err)
	}
	if bProg.Claim() == nil {
		t.Fatal("worker-b did not claim the contact")
	}
	holderCopy := bProg.Claim().Checkpoint()
	cp, _, err := b.checkpoints.Get(ctx, ada.ID)
	if err != nil || cp.Script == nil || cp.Script.Text != "from a" {
		t.Fatalf("checkpoint after the lost claim = %+v (%v)", cp, err)
	}
	if cp.Owner != holderCopy.Owner || !cp.LeaseUntil.Equal(holderCopy.LeaseUntil) || holderCopy.Script != nil {
		t.Fatalf("checkpoint %+v, holder's copy %+v: want the holder's claim untouched and its copy without the script", cp, holderCopy)
	}

	bGuard.Reset() // the LLM recovered; the held contact runs again
	if out, err := holder.Process(ctx, ada, bProg); err != nil || out != call.Completed {
		t.Fatalf("worker-b's resumed Process = %v, %v", out, err)
	}
	if n := bCalls.Load(); n != 0 {
		t.Fatalf("worker-b called the LLM %d times for a script already paid for", n)
	}
	if got := tts.spoken(); len(got) != 1 || got[0] != "from a" {
		t.Fatalf("text-to-speech spoke %q, want worker-a's script once", got)
	}
	cp, _, err = b.checkpoints.Get(ctx, ada.ID)
	if err != nil || cp.Script == nil || cp.Script.Text != "from a" { // the audio is in the completed record, below
		t.Fatalf("checkpoint after worker-b completed = %+v (%v)", cp, err)
	}
	if rec := b.completedRecord(t, ada.ID); rec.ScriptChars != len("from a") || rec.Spend[call.StepLLM].PromptTokens != 100 || rec.AudioRef == "" {
		t.Fatalf("completed record = %+v", rec)
	}
}

// A holder that already saved its own script keeps it: worker-a's late one is dropped.
func TestALateScriptDoesNotReplaceTheHoldersOwn(t *testing.T) {
	b := setup(t, nil, nil)
	ctx := context.Background()
	var aCalls, bCalls atomic.Int32
	tts := &recordingTTS{}
	holder := b.worker("worker-b", time.Minute, call.Backend[call.ScriptWriter]{Provider: countingLLM("from b", &bCalls), Guard: guard("LLM")},
		call.Backend[call.Synthesizer]{Provider: ttsFunc(func(context.Context, contact.Contact, string) (call.Audio, error) {
			return call.Audio{}, fault.Classify(fault.Facts{Provider: "TTS", Status: 503})
		}), Guard: guard("TTS")})
	aLLM := llmFunc(func(ctx context.Context, c contact.Contact) (call.Script, error) {
		// worker-b takes the contact over, pays for its own script and fails at the audio.
		if _, err := holder.Process(ctx, c, &call.Progress{}); err == nil {
			t.Error("worker-b's run succeeded; want it to fail at the audio")
		}
		return countingLLM("from a", &aCalls)(ctx, c)
	})
	a := b.worker("worker-a", -time.Minute, call.Backend[call.ScriptWriter]{Provider: aLLM, Guard: guard("LLM")},
		call.Backend[call.Synthesizer]{Provider: tts, Guard: guard("TTS")})
	if _, err := a.Process(ctx, ada, &call.Progress{}); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("worker-a's Process = %v, want ErrClaimLost", err)
	}
	cp, _, err := b.checkpoints.Get(ctx, ada.ID)
	if err != nil || cp.Script == nil || cp.Script.Text != "from b" || bCalls.Load() != 1 {
		t.Fatalf("checkpoint = %+v (%v), worker-b's LLM calls %d: want worker-b's script kept", cp, err, bCalls.Load())
	}
}
