// Package call runs one contact through the paid steps of a call: the LLM writes the script,
// text-to-speech turns it into audio, and the contact is recorded as completed.
//
// Each step runs through its provider's resilience guard (retry outside, breaker and bulkhead
// inside). Providers are small interfaces declared here, so the simulated providers and the
// real HTTP clients plug in the same way. Step results are kept in a Progress so that a
// contact held while a breaker is open resumes where it stopped instead of paying again.
package call

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// Script is step 1's product, with what it cost.
type Script struct {
	Text  string `json:"text"`
	Model string `json:"model,omitempty"`
	// PromptTokens and CompletionTokens are the usage the provider reported; CachedTokens
	// (of the prompt, billed at a discount) and ReasoningTokens (of the completion, billed
	// but not shown) break them down where the API says.
	PromptTokens     int `json:"prompt_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens,omitempty"`
	CachedTokens     int `json:"cached_tokens,omitempty"`
	ReasoningTokens  int `json:"reasoning_tokens,omitempty"`
	// RequestID is the provider's id of the call (x-request-id), for support tickets.
	RequestID string `json:"request_id,omitempty"`
}

// GetText is the script's text; "" for no script.
func (s *Script) GetText() string {
	if s == nil {
		return ""
	}
	return s.Text
}

// Audio is step 2's product, with what it cost.
type Audio struct {
	Data   []byte
	Format string
	// Model is the voice model that spoke it, when the provider has one.
	Model string
	// Characters is what the provider billed (ElevenLabs' character-cost header); 0 when
	// the provider did not say.
	Characters int
	// RequestID is the provider's id of the call (request-id), for support tickets.
	RequestID string
}

// ScriptWriter is the LLM: it writes the call script for a contact.
type ScriptWriter interface {
	WriteScript(ctx context.Context, c contact.Contact) (Script, error)
}

// Synthesizer is text-to-speech: it turns the script into audio.
type Synthesizer interface {
	Synthesize(ctx context.Context, c contact.Contact, script string) (Audio, error)
}

// Backend is one provider of a step behind its own guard (breaker, bulkhead).
type Backend[P any] struct {
	Provider P
	Guard    *resilience.Guard
	// Timeout bounds each attempt; zero means no per-attempt bound.
	Timeout time.Duration
}

// Step is the ordered list of a step's providers: the primary first, then its fallbacks.
type Step[P any] []Backend[P]

// StepObserver measures provider calls; the worker passes its Prometheus metrics. Its
// methods must be safe on a nil receiver's behalf (the worker may pass a disabled one).
type StepObserver interface {
	// InstrumentAttempts wraps the op of one retry loop, counting attempts and retries.
	InstrumentAttempts(provider string, op func(context.Context) error) func(context.Context) error
	// ObserveStep records one step's duration and result with provider.
	ObserveStep(provider, step string, d time.Duration, err error)
	// ObserveSpend records what one paid step cost.
	ObserveSpend(s Spend)
}

// Spend is what one paid step cost, as its provider reported it. It is kept in the
// checkpoint and the completed record, so spend is known per contact and survives restarts.
type Spend struct {
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	// LLM usage (see Script).
	PromptTokens     int `json:"prompt_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens,omitempty"`
	CachedTokens     int `json:"cached_tokens,omitempty"`
	ReasoningTokens  int `json:"reasoning_tokens,omitempty"`
	// Characters is the text-to-speech characters billed (see Audio).
	Characters int `json:"characters,omitempty"`
	// RequestID is the provider's id of the call that succeeded.
	RequestID string `json:"request_id,omitempty"`
}

func scriptSpend(provider string, s Script) Spend {
	return Spend{Provider: provider, Model: s.Model, PromptTokens: s.PromptTokens, CompletionTokens: s.CompletionTokens,
		CachedTokens: s.CachedTokens, ReasoningTokens: s.ReasoningTokens, RequestID: s.RequestID}
}

func audioSpend(provider string, a Audio) Spend {
	return Spend{Provider: provider, Model: a.Model, Characters: a.Characters, RequestID: a.RequestID}
}

// FallbackListener learns which provider serves a step whenever that changes: a fallback
// taking over (from the primary or another fallback) or traffic returning to the primary.
type FallbackListener interface {
	StepProviderChanged(step, from, to, reason string)
}

// Pipeline processes contacts. It is safe for concurrent use once built.
type Pipeline struct {
	LLM Step[ScriptWriter]
	TTS Step[Synthesizer]
	// CRM records each completed call; empty when no CRM is configured.
	CRM         Step[Recorder]
	Retrier     *resilience.Retrier
	Checkpoints CheckpointStore
	// Lease is how long a claim holds without renewal (the consumer's AckWait).
	Lease time.Duration
	// Worker names this process in claims and completion records.
	Worker string
	Log    logrus.FieldLogger
	// Now is the clock for records; nil means time.Now.
	Now func() time.Time
	// Fallbacks, if set, is told when a step changes provider.
	Fallbacks FallbackListener
	// Observer, if set, measures every provider call.
	Observer StepObserver

	serving sync.Map // step name -> provider name that served it last
}

// Progress links the runs of Process for one delivery of a contact: the claim taken on the
// first run, which the worker's heartbeat renews and which it releases on failure.
// It is safe for concurrent use: the heartbeat reads the claim while the steps run.
type Progress struct {
	mu    sync.Mutex
	claim Claim
}

// Claim returns the claim taken so far, or nil.
func (p *Progress) Claim() Claim {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.claim
}

func (p *Progress) setClaim(c Claim) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claim = c
}

// Record is what the completed bucket keeps for a contact.
type Record struct {
	ContactID   string            `json:"contact_id"`
	Status      string            `json:"status"`
	Worker      string            `json:"worker"`
	CompletedAt time.Time         `json:"completed_at"`
	ScriptChars int               `json:"script_chars"`
	AudioRef    string            `json:"audio_ref,omitempty"`
	AudioFormat string            `json:"audio_format,omitempty"`
	Providers   map[string]string `json:"providers"`
	StepMillis  map[string]int64  `json:"step_ms"`
	// Spend is what each paid step cost, by step ("llm", "tts").
	Spend map[string]Spend `json:"spend,omitempty"`
}

// Outcome says what Process did with a contact that returned no error.
type Outcome int

const (
	// Completed: the steps ran (this time or before) and the contact is now recorded.
	Completed Outcome = iota + 1
	// AlreadyCompleted: the contact was recorded as completed before; nothing was called.
	AlreadyCompleted
)

// Step names, used in logs, records and metrics.
const (
	StepLLM = "llm"
	StepTTS = "tts"
	StepCRM = "crm"
)

// Process runs the steps the contact still needs, resuming from its checkpoint: a step whose
// result was saved is never paid for again, nor one whose result a worker that lost the
// contact kept there (see keepResult; a run resuming a claim taken earlier re-reads the
// checkpoint for it first). It claims the contact first, so two workers never run its steps
// at once; the claim also finds a contact completed before. On error the caller decides
// what becomes of the contact (the worker's outcome table) and releases claim.
//
// On a first delivery the JetStream writes are: the claim, the script, the audio, and the
// completed record. Nothing is read.
func (p *Pipeline) Process(ctx context.Context, c contact.Contact, prog *Progress) (Outcome, error) {
	log := p.Log.WithField("contact_id", c.ID)
	claim := prog.Claim()
	var cp Checkpoint
	if claim == nil {
		var err error
		claim, err = p.Checkpoints.Claim(ctx, c.ID, p.Worker, p.Lease)
		if errors.Is(err, ErrCompleted) {
			log.Infof("%s already completed; nothing to do", c.DisplayName())
			return AlreadyCompleted, nil
		}
		if err != nil {
			return 0, err
		}
		prog.setClaim(claim)
		cp = claim.Checkpoint()
	} else {
		// An earlier run took the claim (the contact was held meanwhile): a worker that lost
		// the contact before us may have kept a result it paid for since (KeepResult).
		var err error
		if cp, err = claim.Refresh(ctx); err != nil {
			return 0, fmt.Errorf("refresh the checkpoint: %w", err)
		}
	}
	// Only a run that got past the LLM before can have left audio behind.
	resumed := cp.Script != nil

	script := cp.Script
	if script == nil {
		log.Info("Step 1: Generating response with LLM")
		var written Script
		served, took, err := runStep(ctx, p, log, StepLLM, p.LLM, func(ctx context.Context, llm ScriptWriter) error {
			var err error
			written, err = llm.WriteScript(ctx, c)
			return err
		})
		if err != nil {
			return 0, err
		}
		script = &written
		log.WithField("service", served).Info("LLM API call successful")
		spend := scriptSpend(served, written)
		p.observeSpend(spend)
		result := Checkpoint{Script: script}
		setStep(&result, StepLLM, served, took)
		setSpend(&result, StepLLM, spend)
		// Saved before the TTS call, not alongside it: while NATS is down the save waits, and
		// a TTS call made meanwhile would be paid again by the worker the contact passes to.
		if err := p.keepResult(ctx, log, c.ID, claim, "script", result); err != nil {
			return 0, fmt.Errorf("checkpoint the script: %w", err)
		}
	} else {
		log.Info("Step 1: script already written (checkpoint); not calling the LLM again")
	}

	cp = claim.Checkpoint()
	if cp.AudioRef == "" && resumed {
		// An earlier run may have stored the audio and died before recording it.
		stored, ok, err := p.Checkpoints.StoredAudio(ctx, c.ID)
		if err != nil {
			return 0, err
		}
		if ok {
			if err := p.keepResult(ctx, log, c.ID, claim, "audio", stored); err != nil {
				return 0, fmt.Errorf("checkpoint the audio: %w", err)
			}
			cp = claim.Checkpoint()
		}
	}
	if cp.AudioRef == "" {
		log.Infof("Step 2: Converting text to speech with %s", p.TTS[0].Guard.Provider())
		var audio Audio
		served, took, err := runStep(ctx, p, log, StepTTS, p.TTS, func(ctx context.Context, tts Synthesizer) error {
			var err error
			audio, err = tts.Synthesize(ctx, c, script.Text)
			return err
		})
		if err != nil {
			return 0, err
		}
		spend := audioSpend(served, audio)
		p.observeSpend(spend)
		var step Checkpoint
		setStep(&step, StepTTS, served, took)
		setSpend(&step, StepTTS, spend)
		var ref string
		if err := keep(ctx, func(ctx context.Context) error {
			var err error
			ref, err = p.Checkpoints.PutAudio(ctx, c.ID, audio, step, resumed)
			return err
		}); err != nil {
			return 0, fmt.Errorf("checkpoint the audio: %w", err)
		}
		step.AudioRef, step.AudioFormat = ref, audio.Format
		// The audio result goes into the completed record, not the checkpoint: it is stored
		// with what it cost, and a run that dies before completing finds it (StoredAudio).
		cp = claim.Checkpoint()
		cp.TakeResults(step)
	} else {
		log.Info("Step 2: audio already synthesized (checkpoint); not calling text-to-speech again")
	}

	if len(p.CRM) > 0 {
		result := p.result(c, cp)
		log.Infof("Step 3: Recording the call in the CRM (%s)", p.CRM[0].Guard.Provider())
		served, took, err := runStep(ctx, p, log, StepCRM, p.CRM, func(ctx context.Context, crm Recorder) error {
			return crm.RecordCall(ctx, result)
		})
		if err != nil {
			return 0, err
		}
		setStep(&cp, StepCRM, served, took)
	}

	if err := keep(ctx, func(ctx context.Context) error { return claim.Complete(ctx, p.record(c, cp)) }); err != nil {
		return 0, fmt.Errorf("record completion: %w", err)
	}
	log.Infof("Call completed for %s", c.DisplayName())
	return Completed, nil
}

// keepResult saves the step result in result (see Checkpoint.TakeResults) with the claim. If
// the claim was lost meanwhile (our lease lapsed and another worker took the contact), the
// result was still paid for: it is kept in the contact's checkpoint for the worker holding it
// now, unless that checkpoint has the step's result already (CheckpointStore.KeepResult), so
// the contact's next run uses it instead of paying again. ErrClaimLost is returned all the
// same: this delivery leaves the contact to the new holder.
func (p *Pipeline) keepResult(ctx context.Context, log logrus.FieldLogger, contactID string, claim Claim, what string, result Checkpoint) error {
	err := keep(ctx, func(ctx context.Context) error {
		return claim.Save(ctx, func(cp *Checkpoint) { cp.TakeResults(result) })
	})
	if !errors.Is(err, ErrClaimLost) {
		return err
	}
	var kept bool
	kerr := keep(ctx, func(ctx context.Context) error {
		var err error
		kept, err = p.Checkpoints.KeepResult(ctx, contactID, func(cp *Checkpoint) bool { return cp.TakeResults(result) })
		return err
	})
	switch {
	case kerr != nil:
		log.WithError(kerr).Errorf("Lost the claim and could not keep the paid %s in the checkpoint; the next run pays for it again", what)
	case kept:
		log.Warnf("Lost the claim; kept the paid %s in the checkpoint for the worker that holds the contact now", what)
	default:
		log.Warnf("Lost the claim; the checkpoint has a %s already (another worker's), ours is dropped", what)
	}
	return err
}

// keepAttemptTimeout and keepBudget bound how hard keep tries to store what was just paid
// for: short attempts, so the write lands within about one attempt of NATS coming back (a
// restarted server hands the contact's lapsed delivery to another worker at once, and every
// second the result is not in the checkpoint is a second that worker may pay again), for at
// most keepBudget in all.
const (
	keepAttemptTimeout = 2 * time.Second
	keepBudget         = 30 * time.Second
)

// keep writes the result of a step that was just paid for. It does not stop when ctx is
// cancelled (the shutdown grace ending must not throw the result away and pay for it again)
// and retries a KV error or an unreachable server until keepBudget is spent; only a lost
// claim ends it at once.
func keep(ctx context.Context, write func(context.Context) error) error {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(keepBudget)
	var err error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			pause := min(time.Duration(attempt)*200*time.Millisecond, time.Second)
			if time.Now().Add(pause).After(deadline) {
				return err
			}
			time.Sleep(pause)
		}
		wctx, cancel := context.WithTimeout(ctx, keepAttemptTimeout)
		err = write(wctx)
		cancel()
		if err == nil || errors.Is(err, ErrClaimLost) {
			return err
		}
	}
}

// setSpend and setStep replace cp's maps rather than write to them (see withEntry).
func setSpend(cp *Checkpoint, step string, s Spend) {
	cp.Spend = withEntry(cp.Spend, step, s)
}

func (p *Pipeline) observeSpend(s Spend) {
	if p.Observer != nil {
		p.Observer.ObserveSpend(s)
	}
}

func setStep(cp *Checkpoint, step, provider string, took time.Duration) {
	cp.Providers = withEntry(cp.Providers, step, provider)
	cp.StepMillis = withEntry(cp.StepMillis, step, took.Milliseconds())
}

// runStep runs op on the first backend of step that can take the call now: a backend whose
// breaker is not closed or whose bulkhead is full is skipped while another follows it. A
// backend that fails in a way that is the provider's (breaker opened, authentication, quota,
// configuration) hands the contact to the next one; an error caused by the contact does not.
// It returns the provider that served.
func runStep[P any](ctx context.Context, p *Pipeline, log logrus.FieldLogger, step string, backends Step[P],
	op func(context.Context, P) error) (string, time.Duration, error) {
	var skipped []string
	for i, b := range backends {
		name := b.Guard.Provider()
		last := i == len(backends)-1
		if !last && !available(b.Guard) {
			skipped = append(skipped, fmt.Sprintf("%s: %s", name, unavailableReason(b.Guard)))
			continue
		}
		took, err := p.run(ctx, log, b.Guard, b.Timeout, func(ctx context.Context) error { return op(ctx, b.Provider) })
		if p.Observer != nil {
			p.Observer.ObserveStep(name, step, took, err)
		}
		if err == nil {
			p.served(step, name, strings.Join(skipped, "; "))
			return name, took, nil
		}
		if last || !handsOver(err, b.Guard) || ctx.Err() != nil {
			return name, took, &StepError{Step: step, Provider: name, Err: err}
		}
		skipped = append(skipped, fmt.Sprintf("%s: %s", name, fault.KindOf(err)))
		log.WithField("service", name).Warnf("%s failed (%s); trying %s", name, fault.KindOf(err), backends[i+1].Guard.Provider())
	}
	panic("call: a step with no backend") // the daemon never builds one
}

// available reports whether a backend can take a call now without waiting.
func available(g *resilience.Guard) bool {
	b := g.Bulkhead()
	return g.Ready() && b.InUse() < b.Limit()
}

func unavailableReason(g *resilience.Guard) string {
	if !g.Ready() {
		return "circuit " + string(g.State())
	}
	return "bulkhead full"
}

// handsOver reports whether an error from one backend should send the call to the next.
func handsOver(err error, g *resilience.Guard) bool {
	var open *resilience.OpenError
	if errors.As(err, &open) || !g.Ready() {
		return true
	}
	switch fault.KindOf(err) {
	case fault.KindAuthentication, fault.KindQuota, fault.KindConfiguration, fault.KindPermission:
		return true
	}
	return false
}

// served records which provider served step and tells the listener when that changed.
func (p *Pipeline) served(step, provider, reason string) {
	prev, loaded := p.serving.Swap(step, provider)
	if !loaded {
		prev = ""
	}
	if prev == provider || (prev == "" && reason == "") {
		return
	}
	from, _ := prev.(string)
	if reason == "" {
		reason = "recovered"
	}
	p.Log.WithField("service", provider).Warnf("Step %s now served by %s (was %s; %s)", step, provider, orNone(from), reason)
	if p.Fallbacks != nil {
		p.Fallbacks.StepProviderChanged(step, from, provider, reason)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (p *Pipeline) run(ctx context.Context, log logrus.FieldLogger, g *resilience.Guard, timeout time.Duration,
	op func(ctx context.Context) error) (time.Duration, error) {
	start := p.now()
	attempt := func(ctx context.Context) error {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return op(ctx)
	}
	if p.Observer != nil {
		attempt = p.Observer.InstrumentAttempts(g.Provider(), attempt)
	}
	err := p.Retrier.Run(ctx, log.WithField("service", g.Provider()), g, attempt)
	return p.now().Sub(start), err
}

func (p *Pipeline) record(c contact.Contact, cp Checkpoint) Record {
	return Record{
		ContactID:   c.ID,
		Status:      "completed",
		Worker:      p.Worker,
		CompletedAt: p.now().UTC(),
		ScriptChars: len(cp.Script.GetText()),
		AudioRef:    cp.AudioRef,
		AudioFormat: cp.AudioFormat,
		Providers:   cp.Providers,
		StepMillis:  cp.StepMillis,
		Spend:       cp.Spend,
	}
}

func (p *Pipeline) result(c contact.Contact, cp Checkpoint) CallResult {
	return CallResult{
		ContactID:   c.ID,
		Status:      "completed",
		Script:      cp.Script.GetText(),
		AudioRef:    cp.AudioRef,
		AudioFormat: cp.AudioFormat,
		Providers:   cp.Providers,
		StepMillis:  cp.StepMillis,
		CompletedAt: p.now().UTC(),
	}
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// StepError says which step and provider a failure came from; it wraps the resilience or
// fault error, so errors.As reaches the typed cause.
type StepError struct {
	Step     string
	Provider string
	Err      error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// ProviderOf returns the provider a failure came from, or "" when it did not come from a step.
func ProviderOf(err error) string {
	var se *StepError
	if errors.As(err, &se) {
		return se.Provider
	}
	return ""
}

// CallResult is what the CRM receives for a completed call.
type CallResult struct {
	ContactID string `json:"contact_id"`
	Status    string `json:"status"`
	Script    string `json:"script"`
	// AudioRef locates the audio (the audio checkpoint's object name), not the bytes.
	AudioRef    string            `json:"audio_ref,omitempty"`
	AudioFormat string            `json:"audio_format,omitempty"`
	Providers   map[string]string `json:"providers"`
	StepMillis  map[string]int64  `json:"step_ms"`
	CompletedAt time.Time         `json:"completed_at"`
}

// Recorder is the CRM: it records each completed call. Recording the same contact twice must
// be harmless (the real client sends an Idempotency-Key equal to the contact id).
type Recorder interface {
	RecordCall(ctx context.Context, r CallResult) error
}
