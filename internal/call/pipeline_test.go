package call_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/resilience"
)

type llmFunc func(ctx context.Context, c contact.Contact) (call.Script, error)

func (f llmFunc) WriteScript(ctx context.Context, c contact.Contact) (call.Script, error) {
	return f(ctx, c)
}

type ttsFunc func(ctx context.Context, c contact.Contact, s string) (call.Audio, error)

func (f ttsFunc) Synthesize(ctx context.Context, c contact.Contact, s string) (call.Audio, error) {
	return f(ctx, c, s)
}

type bundle struct {
	pipeline    *call.Pipeline
	checkpoints *queue.Checkpoints
}

func setup(t *testing.T, llm []call.Backend[call.ScriptWriter], tts []call.Backend[call.Synthesizer]) bundle {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	cps, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.Out = io.Discard
	return bundle{
		pipeline: &call.Pipeline{LLM: llm, TTS: tts, Retrier: resilience.NewRetrier(resilience.RetryPolicy{MaxAttempts: 1}, nil, log),
			Checkpoints: cps, Lease: time.Minute, Worker: "w", Log: log},
		checkpoints: cps,
	}
}

func guard(name string) *resilience.Guard {
	return resilience.NewGuard(name, resilience.GuardOptions{Breaker: resilience.BreakerSettings{FailureThreshold: 1, SuccessThreshold: 1, OpenTimeout: time.Hour}})
}

var ada = contact.Contact{ID: "c1", Name: "Ada", Phone: "+14155550101"}

func TestAPaidScriptIsKeptWhenShutdownCancelsRightAfterTheCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var llmCalls atomic.Int32
	llm := llmFunc(func(context.Context, contact.Contact) (call.Script, error) {
		llmCalls.Add(1)
		cancel() // the grace period ends while the answer is on its way back
		return call.Script{Text: "hello"}, nil
	})
	tts := ttsFunc(func(ctx context.Context, _ contact.Contact, _ string) (call.Audio, error) {
		return call.Audio{}, ctx.Err()
	})
	b := setup(t, []call.Backend[call.ScriptWriter]{{Provider: llm, Guard: guard("LLM")}},
		[]call.Backend[call.Synthesizer]{{Provider: tts, Guard: guard("TTS")}})
	prog := &call.Progress{}
	if _, err := b.pipeline.Process(ctx, ada, prog); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v, want the cancellation", err)
	}
	cp, ok, err := b.checkpoints.Get(context.Background(), "c1")
	if err != nil || !ok || cp.Script == nil || cp.Script.Text != "hello" {
		t.Fatalf("checkpoint after the cancelled run = %+v (%v, %v): the paid script was thrown away", cp, ok, err)
	}
}

func TestAudioStoredButNotRecordedIsNotPaidAgain(t *testing.T) {
	var ttsCalls atomic.Int32
	llm := llmFunc(func(context.Context, contact.Contact) (call.Script, error) { return call.Script{Text: "hello"}, nil })
	tts := ttsFunc(func(context.Context, contact.Contact, string) (call.Audio, error) {
		ttsCalls.Add(1)
		return call.Audio{Data: []byte("mp3"), Format: "mp3_44100_128"}, nil
	})
	b := setup(t, []call.Backend[call.ScriptWriter]{{Provider: llm, Guard: guard("LLM")}},
		[]call.Backend[call.Synthesizer]{{Provider: tts, Guard: guard("TTS")}})
	// A worker saved the script, stored the audio and died before completing the contact.
	ctx := context.Background()
	paidTTS := call.Spend{Provider: "TTS", Model: "eleven_flash_v2_5", Characters: 5, RequestID: "r1"}
	paidStep := call.Checkpoint{Providers: map[string]string{call.StepTTS: "TTS"}, StepMillis: map[string]int64{call.StepTTS: 420},
		Spend: map[string]call.Spend{call.StepTTS: paidTTS}}
	earlier, err := b.checkpoints.Claim(ctx, "c1", "earlier-worker", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := earlier.Save(ctx, func(cp *call.Checkpoint) { cp.Script = &call.Script{Text: "hello"} }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.checkpoints.PutAudio(ctx, "c1", call.Audio{Data: []byte("mp3"), Format: "mp3_44100_128"}, paidStep, false); err != nil {
		t.Fatal(err)
	}
	if err := earlier.Release(ctx, time.Time{}, ""); err != nil { // its lease lapsed
		t.Fatal(err)
	}
	if out, err := b.pipeline.Process(context.Background(), ada, &call.Progress{}); err != nil || out != call.Completed {
		t.Fatalf("Process = %v, %v", out, err)
	}
	if n := ttsCalls.Load(); n != 0 {
		t.Fatalf("TTS called %d times for audio already stored", n)
	}
	// What the audio cost was stored with it, so the completed record still has it.
	rec, ok, err := b.checkpoints.Completed(ctx, "c1")
	if err != nil || !ok || rec.Spend[call.StepTTS] != paidTTS || rec.Providers[call.StepTTS] != "TTS" ||
		rec.StepMillis[call.StepTTS] != 420 || rec.AudioRef != "audio/c1" || rec.AudioFormat != "mp3_44100_128" {
		t.Fatalf("completed record = %+v (%v, %v), want the stored audio's step and spend", rec, ok, err)
	}
}

func TestFallbackServesWhileThePrimaryIsOpenAndPrimaryServesAgainAfter(t *testing.T) {
	primary, fallback := guard("ElevenLabs"), guard("OpenAI TTS")
	var primaryCalls, fallbackCalls atomic.Int32
	down := atomic.Bool{}
	down.Store(true)
	primaryTTS := ttsFunc(func(context.Context, contact.Contact, string) (call.Audio, error) {
		primaryCalls.Add(1)
		if down.Load() {
			return call.Audio{}, fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503})
		}
		return call.Audio{Data: []byte("a")}, nil
	})
	fallbackTTS := ttsFunc(func(context.Context, contact.Contact, string) (call.Audio, error) {
		fallbackCalls.Add(1)
		return call.Audio{Data: []byte("b")}, nil
	})
	llm := llmFunc(func(context.Context, contact.Contact) (call.Script, error) { return call.Script{Text: "hi"}, nil })
	b := setup(t, []call.Backend[call.ScriptWriter]{{Provider: llm, Guard: guard("LLM")}},
		[]call.Backend[call.Synthesizer]{{Provider: primaryTTS, Guard: primary}, {Provider: fallbackTTS, Guard: fallback}})
	ctx := context.Background()
	run := func(id string) {
		t.Helper()
		c := ada
		c.ID = id
		if _, err := b.pipeline.Process(ctx, c, &call.Progress{}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	run("c1") // the primary fails, opens (threshold 1) and hands the contact over
	run("c2") // the primary is open: skipped
	if primaryCalls.Load() != 1 || fallbackCalls.Load() != 2 {
		t.Fatalf("during the outage: primary %d calls, fallback %d; want 1 and 2", primaryCalls.Load(), fallbackCalls.Load())
	}
	down.Store(false)
	primary.Reset() // the health checker's doing
	run("c3")
	if primaryCalls.Load() != 2 || fallbackCalls.Load() != 2 {
		t.Fatalf("after recovery: primary %d calls, fallback %d; want 2 and 2", primaryCalls.Load(), fallbackCalls.Load())
	}
}

// spendObserver records what the pipeline reports as spent.
type spendObserver struct{ spent []call.Spend }

func (o *spendObserver) InstrumentAttempts(_ string, op func(context.Context) error) func(context.Context) error {
	return op
}
func (o *spendObserver) ObserveStep(string, string, time.Duration, error) {}
func (o *spendObserver) ObserveSpend(s call.Spend)                        { o.spent = append(o.spent, s) }

// What each paid step cost is reported once, kept in the checkpoint (so a resumed contact
// still knows it) and in the completed record.
func TestSpendIsRecordedPerStep(t *testing.T) {
	llm := llmFunc(func(context.Context, contact.Contact) (call.Script, error) {
		return call.Script{Text: "hello", Model: "gpt-5-mini", PromptTokens: 120, CompletionTokens: 80, CachedTokens: 64,
			ReasoningTokens: 40, RequestID: "req_1"}, nil
	})
	tts := ttsFunc(func(context.Context, contact.Contact, string) (call.Audio, error) {
		return call.Audio{Data: []byte("mp3"), Format: "mp3_44100_128", Model: "eleven_flash_v2_5", Characters: 5, RequestID: "r2"}, nil
	})
	b := setup(t, []call.Backend[call.ScriptWriter]{{Provider: llm, Guard: guard("LLM")}},
		[]call.Backend[call.Synthesizer]{{Provider: tts, Guard: guard("ElevenLabs")}})
	obs := &spendObserver{}
	b.pipeline.Observer = obs
	if out, err := b.pipeline.Process(context.Background(), ada, &call.Progress{}); err != nil || out != call.Completed {
		t.Fatalf("Process = %v, %v", out, err)
	}
	wantLLM := call.Spend{Provider: "LLM", Model: "gpt-5-mini", PromptTokens: 120, CompletionTokens: 80, CachedTokens: 64,
		ReasoningTokens: 40, RequestID: "req_1"}
	wantTTS := call.Spend{Provider: "ElevenLabs", Model: "eleven_flash_v2_5", Characters: 5, RequestID: "r2"}
	if len(obs.spent) != 2 || obs.spent[0] != wantLLM || obs.spent[1] != wantTTS {
		t.Fatalf("observed spend = %+v", obs.spent)
	}
	cp, _, err := b.checkpoints.Get(context.Background(), "c1")
	if err != nil || cp.Spend["llm"] != wantLLM {
		t.Fatalf("checkpoint spend = %+v (%v)", cp.Spend, err)
	}
	rec, ok, err := b.checkpoints.Completed(context.Background(), "c1")
	if err != nil || !ok {
		t.Fatalf("completed record: %v, %v", ok, err)
	}
	if rec.Spend["llm"] != wantLLM || rec.Spend["tts"] != wantTTS {
		t.Fatalf("completed record spend = %+v", rec.Spend)
	}
}
