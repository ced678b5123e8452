package openai_test

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// apiKey looks like a Groq key: no credential shape of package redact matches it, so only
// the registered secret can redact it.
const apiKey = "gsk_Zx9QeT4vLm2Rb7Wc1Yd8Nf3Hj6Kp0Ua5"

var someone = contact.Contact{ID: "c-42", Name: "Ada", Phone: "+14155550123", Language: "en",
	Variables: map[string]string{"topic": "billing"}}

type bundle struct {
	fake   *providertest.OpenAI
	chat   *openai.Chat
	speech *openai.Speech
	red    *redact.Redactor
}

// setup starts a fake OpenAI-compatible API with a Chat and a Speech client for it; the edit
// functions, when not nil, adjust the clients' options.
func setup(t *testing.T, fo providertest.OpenAIOptions, editChat func(*openai.ChatOptions), editSpeech func(*openai.SpeechOptions)) *bundle {
	t.Helper()
	if fo.APIKey == "" {
		fo.APIKey = apiKey
	}
	fake := providertest.NewOpenAI(t, fo)
	fake.Forbid(someone.Phone)
	hc := providertest.HTTPClient(t, "test")
	red := redact.New()
	co := openai.ChatOptions{APIKey: secret.Secret(apiKey), BaseURL: fake.BaseURL(), HTTP: hc, Redactor: red}
	if editChat != nil {
		editChat(&co)
	}
	chat, err := openai.NewChat(co)
	if err != nil {
		t.Fatal(err)
	}
	so := openai.SpeechOptions{APIKey: secret.Secret(apiKey), BaseURL: fake.BaseURL(), HTTP: hc, Redactor: red}
	if editSpeech != nil {
		editSpeech(&so)
	}
	speech, err := openai.NewSpeech(so)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{fake: fake, chat: chat, speech: speech, red: red}
}

// checkFacts compares what a client reported with a row of the shared table: the facts a
// correct client extracts (code, param, message, request id, wait), the kind, the retry
// decision (what fault.Classify makes of the row's facts, x-should-retry included), and
// the error text the operator sees (the provider's message and the request id).
func checkFacts(t *testing.T, what, provider string, err error, tc faulttest.Case) {
	t.Helper()
	se := providertest.ServiceError(t, err)
	want := tc.Facts
	if se.Kind != tc.Want || se.Provider != provider || se.Status != want.Status || se.Code != want.Code ||
		se.Param != want.Param || se.RequestID != want.RequestID || se.RetryAfter != want.RetryAfter {
		t.Errorf("%s: got kind %v provider %q status %d code %q param %q request id %q retry-after %v;\n"+
			"want     %v %q %d %q %q %q %v",
			what, se.Kind, se.Provider, se.Status, se.Code, se.Param, se.RequestID, se.RetryAfter,
			tc.Want, provider, want.Status, want.Code, want.Param, want.RequestID, want.RetryAfter)
	}
	if se.Message != want.Message {
		t.Errorf("%s: message %q, want %q", what, se.Message, want.Message)
	}
	want.Provider = provider
	if got, wantRetry := fault.IsTransient(err), fault.IsTransient(fault.Classify(want)); got != wantRetry {
		t.Errorf("%s: IsTransient = %v, want %v", what, got, wantRetry)
	}
	text := err.Error()
	if !strings.Contains(text, want.Message) {
		t.Errorf("%s: error text %q lacks the provider's message", what, text)
	}
	if want.RequestID != "" && !strings.HasSuffix(text, " (request_id "+want.RequestID+")") {
		t.Errorf("%s: error text %q lacks the request id %s", what, text, want.RequestID)
	}
	if want.Err != nil && !errors.Is(err, httpx.ErrUnusableBody) {
		t.Errorf("%s: err = %v, want an unusable-body error", what, err)
	}
}
