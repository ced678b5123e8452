package openai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/secret"
)

func ExampleChat_WriteScript() {
	// A stand-in for https://api.openai.com/v1 (or Groq, vLLM, Ollama…).
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_8a1f")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello Ada! Do you have a minute?"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":96,"completion_tokens":9,"total_tokens":105}}`)
	}))
	defer api.Close()
	hc, err := httpx.New(httpx.Options{Version: "v1.0.0"})
	if err != nil {
		panic(err)
	}
	defer hc.CloseIdleConnections()

	prompt, err := openai.LoadPrompt("") // LLM_SYSTEM_PROMPT_FILE unset: the built-in prompt
	if err != nil {
		panic(err)
	}
	llm, err := openai.NewChat(openai.ChatOptions{
		APIKey: secret.Secret("sk-example"), BaseURL: api.URL + "/v1", Model: "gpt-4o-mini",
		Prompt: prompt, MaxTokens: 200, HTTP: hc,
	})
	if err != nil {
		panic(err)
	}
	s, err := llm.WriteScript(context.Background(), contact.Contact{ID: "c1", Name: "Ada", Phone: "+14155550123"})
	fmt.Printf("%q by %s, %d+%d tokens, %s, %v\n", s.Text, s.Model, s.PromptTokens, s.CompletionTokens, s.RequestID, err)
	// Output:
	// "Hello Ada! Do you have a minute?" by gpt-4o-mini-2024-07-18, 96+9 tokens, req_8a1f, <nil>
}

// insufficient_quota arrives as a 429 but must never be retried.
func ExampleChat_WriteScript_quota() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.",`+
			`"type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)
	}))
	defer api.Close()
	hc, _ := httpx.New(httpx.Options{})
	defer hc.CloseIdleConnections()
	llm, _ := openai.NewChat(openai.ChatOptions{APIKey: secret.Secret("sk-example"), BaseURL: api.URL + "/v1", HTTP: hc})

	_, err := llm.WriteScript(context.Background(), contact.Contact{ID: "c1"})
	fmt.Println(fault.KindOf(err), fault.IsTransient(err))
	// Output:
	// quota_exceeded false
}

// An OpenAI-compatible text-to-speech API can stand in for ElevenLabs.
func ExampleSpeech_Synthesize() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = io.WriteString(w, "ID3 fake mp3")
	}))
	defer api.Close()
	hc, _ := httpx.New(httpx.Options{})
	defer hc.CloseIdleConnections()

	tts, err := openai.NewSpeech(openai.SpeechOptions{
		Name: "OpenAI TTS (fallback)", APIKey: secret.Secret("sk-example"), BaseURL: api.URL + "/v1",
		Voice: "alloy", Format: "mp3", HTTP: hc,
	})
	if err != nil {
		panic(err)
	}
	audio, err := tts.Synthesize(context.Background(), contact.Contact{ID: "c1"}, "Hello Ada!")
	fmt.Println(tts.Name(), len(audio.Data), audio.Format, err)
	// Output:
	// OpenAI TTS (fallback) 12 mp3 <nil>
}

// The worker logs a hint at start when a base URL lacks its version path.
func ExampleBaseURLHint() {
	for _, base := range []string{"https://api.openai.com", "https://api.groq.com/openai/v1", "http://localhost:11434/v1"} {
		fmt.Printf("%s: %q\n", base, openai.BaseURLHint(base))
	}
	// Output:
	// https://api.openai.com: "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. https://api.openai.com/v1"
	// https://api.groq.com/openai/v1: ""
	// http://localhost:11434/v1: ""
}

// TOKEN_PARAM=auto sends max_completion_tokens to OpenAI, whose reasoning models refuse
// max_tokens, and max_tokens to servers that know only that.
func ExampleChat_TokenParam() {
	for _, base := range []string{"https://api.openai.com/v1", "https://api.groq.com/openai/v1"} {
		llm, err := openai.NewChat(openai.ChatOptions{APIKey: secret.Secret("sk-example"), BaseURL: base})
		if err != nil {
			panic(err)
		}
		fmt.Println(base, llm.TokenParam())
	}
	// Output:
	// https://api.openai.com/v1 max_completion_tokens
	// https://api.groq.com/openai/v1 max_tokens
}
