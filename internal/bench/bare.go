package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The bare consumer is what issue 12 compares the worker with: a nats.go JetStream pull
// consumer (Consume) feeding a pool of goroutines that, for each message, decode the contact,
// POST a chat completion, POST the text-to-speech call and Ack. No retry, no breaker, no
// checkpoint, no completed record. On a failed call it Naks at once (immediate redelivery)
// and, on the bareMaxDeliver-th delivery, publishes the contact to its dead-letter stream and
// Terms it.
const (
	bareStream     = "BARE_CONTACTS"
	bareSubject    = "bare.contacts"
	bareConsumer   = "bare"
	bareDLQStream  = "BARE_DEAD_LETTERS"
	bareDLQSubject = "bare.deadletter"
	bareMaxDeliver = 5 // the project's MAX_DELIVER default
)

// bareContact is the part of a contact the bare consumer reads.
type bareContact struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Language  string            `json:"language"`
	Variables map[string]string `json:"variables"`
}

type bareChatRequest struct {
	Model     string            `json:"model"`
	Messages  []bareChatMessage `json:"messages"`
	MaxTokens int               `json:"max_tokens"`
}

type bareChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type bareChatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

type bareTTSRequest struct {
	Text    string `json:"text"`
	ModelID string `json:"model_id"`
}

// bareSystemPrompt is about as long as the worker's rendered default prompt.
const bareSystemPrompt = "You write the opening of an outbound phone call. A text-to-speech voice reads your words aloud " +
	"to the person called, so write only what is to be spoken: plain sentences, no lists, no markup, no stage " +
	"directions, no placeholders in brackets.\nWrite in the language with the BCP 47 tag %q.\nThe person's name is %s; " +
	"greet them by it.\nFacts for this call:\n%sSay who is calling and why in one or two sentences, then ask whether " +
	"they have a moment to talk. Keep it under 80 words, warm and polite."

// bare is one run of the bare consumer.
type bare struct {
	js                  jetstream.JetStream
	hc                  *http.Client
	chatURL, ttsURL     string
	completed, dead     atomic.Int64
	naks, failedHandles atomic.Int64
}

func newBare(js jetstream.JetStream, f *Fakes, concurrency int) *bare {
	return &bare{
		js: js,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 4 * concurrency, MaxIdleConnsPerHost: concurrency, IdleConnTimeout: 90 * time.Second,
		}},
		chatURL: f.LLMURL + "/v1/chat/completions",
		ttsURL:  f.TTSURL + "/v1/text-to-speech/" + fakeVoice + "?output_format=mp3_44100_128",
	}
}

// ensureBareTopology creates the bare consumer's stream (the contacts stream's settings),
// its consumer and its dead-letter stream.
func ensureBareTopology(ctx context.Context, js jetstream.JetStream, maxAckPending int) (jetstream.Consumer, error) {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: bareStream, Subjects: []string{bareSubject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: 1, Duplicates: 6 * time.Hour, Discard: jetstream.DiscardOld,
	}); err != nil {
		return nil, fmt.Errorf("bare stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: bareDLQStream, Subjects: []string{bareDLQSubject}, Storage: jetstream.FileStorage, Replicas: 1,
	}); err != nil {
		return nil, fmt.Errorf("bare dead-letter stream: %w", err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, bareStream, jetstream.ConsumerConfig{
		Durable: bareConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: bareMaxDeliver, MaxAckPending: maxAckPending, FilterSubject: bareSubject,
	})
	if err != nil {
		return nil, fmt.Errorf("bare consumer: %w", err)
	}
	return c, nil
}

// consume runs concurrency handlers until ctx ends.
func (b *bare) consume(ctx context.Context, cons jetstream.Consumer, concurrency int) (stop func(), err error) {
	msgs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(concurrency))
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				select {
				case m := <-msgs:
					b.handle(ctx, m)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return func() {
		cc.Stop()
		wg.Wait()
	}, nil
}

func (b *bare) handle(ctx context.Context, m jetstream.Msg) {
	var c bareContact
	if err := json.Unmarshal(m.Data(), &c); err != nil {
		b.deadLetter(ctx, m, "invalid contact: "+err.Error())
		return
	}
	script, err := b.chat(ctx, c)
	if err == nil {
		err = b.speak(ctx, script)
	}
	if err != nil {
		b.failed(ctx, m, err)
		return
	}
	if m.Ack() == nil {
		b.completed.Add(1)
	}
}

func (b *bare) failed(ctx context.Context, m jetstream.Msg, cause error) {
	md, err := m.Metadata()
	if err == nil && md.NumDelivered >= bareMaxDeliver {
		b.deadLetter(ctx, m, cause.Error())
		return
	}
	b.naks.Add(1)
	_ = m.Nak()
}

func (b *bare) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	dl := nats.NewMsg(bareDLQSubject)
	dl.Data = m.Data()
	dl.Header.Set("Reason", reason)
	if _, err := b.js.PublishMsg(ctx, dl); err != nil {
		b.failedHandles.Add(1)
		_ = m.Nak()
		return
	}
	if m.Term() == nil {
		b.dead.Add(1)
	}
}

func (b *bare) chat(ctx context.Context, c bareContact) (string, error) {
	var facts bytes.Buffer
	for _, k := range []string{"appointment", "clinic", "ref"} { // sorted, as the worker's template ranges
		if v, ok := c.Variables[k]; ok {
			fmt.Fprintf(&facts, "- %s: %s\n", k, v)
		}
	}
	body, err := json.Marshal(bareChatRequest{Model: fakeLLMModel, MaxTokens: 300, Messages: []bareChatMessage{
		{Role: "system", Content: fmt.Sprintf(bareSystemPrompt, c.Language, c.Name, facts.String())},
		{Role: "user", Content: "Write the call script now. Reply with the words to be spoken and nothing else."},
	}})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.chatURL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+fakeLLMKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("chat completion: %s", resp.Status)
	}
	var cr bareChatResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		return "", fmt.Errorf("chat completion: %w", err)
	}
	if len(cr.Choices) == 0 || cr.Choices[0].Message.Content == "" {
		return "", errors.New("chat completion: empty")
	}
	return cr.Choices[0].Message.Content, nil
}

func (b *bare) speak(ctx context.Context, script string) error {
	body, err := json.Marshal(bareTTSRequest{Text: script, ModelID: fakeTTSModel})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.ttsURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("xi-api-key", fakeTTSKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	audio, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("text to speech: %w", err)
	}
	if resp.StatusCode/100 != 2 || len(audio) == 0 {
		return fmt.Errorf("text to speech: %s", resp.Status)
	}
	return nil
}
