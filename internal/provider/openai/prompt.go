package openai

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// PromptFileField names the template file in LoadPrompt's *field.Error values.
const PromptFileField = "PromptFile"

// MaxPromptFileBytes caps the template file.
const MaxPromptFileBytes = 64 << 10

// UserMessage is the user turn sent after the system prompt.
const UserMessage = "Write the call script now. Reply with the words to be spoken and nothing else."

//go:embed default_prompt.tmpl
var defaultPromptText string

// PromptData is what a system prompt template sees: the contact's name, language and
// variables. The phone number and the id are deliberately absent: the LLM does not need them
// to write a script, so they are never sent to it.
type PromptData struct {
	// Name is how the contact is addressed; may be empty.
	Name string
	// Language is the BCP 47 tag of the call's language; may be empty.
	Language string
	// Variables are the contact's template variables; a missing key renders as "".
	Variables map[string]string
}

// Prompt is a parsed system prompt template (text/template over PromptData). It is safe for
// concurrent use.
type Prompt struct {
	tmpl *template.Template
}

// DefaultPrompt returns the built-in system prompt, used when LLM_SYSTEM_PROMPT_FILE is unset.
func DefaultPrompt() *Prompt {
	p, err := ParsePrompt("default system prompt", defaultPromptText)
	if err != nil {
		panic("openai: built-in prompt does not parse: " + err.Error())
	}
	return p
}

// LoadPrompt reads and checks the template file at path, or returns DefaultPrompt when path
// is empty. Errors are *field.Error values naming PromptFileField, and a template
// error names the file and line, e.g. "PromptFile is not a valid prompt template: template:
// prompt.tmpl:3: function "nme" not defined".
func LoadPrompt(path string) (*Prompt, error) {
	if path == "" {
		return DefaultPrompt(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &field.Error{Field: PromptFileField, Problem: fmt.Sprintf("cannot be read: %v", err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPromptFileBytes+1))
	if err != nil {
		return nil, &field.Error{Field: PromptFileField, Problem: fmt.Sprintf("cannot be read: %v", err)}
	}
	if len(b) > MaxPromptFileBytes {
		return nil, &field.Error{Field: PromptFileField,
			Problem: fmt.Sprintf("%s is larger than %s", path, httpx.FormatBytes(MaxPromptFileBytes))}
	}
	p, err := ParsePrompt(path, string(b))
	if err != nil {
		return nil, &field.Error{Field: PromptFileField, Problem: "is not a valid prompt template: " + err.Error()}
	}
	return p, nil
}

// ErrPromptEmpty is returned for a template that renders only whitespace.
var ErrPromptEmpty = errors.New("renders an empty prompt")

// ParsePrompt parses text as a template named name (used in error positions) and renders
// it once against a sample contact, so that errors found only at execution (an unknown
// field such as {{.Phone}}) are reported now rather than on the first contact.
func ParsePrompt(name, text string) (*Prompt, error) {
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err // "template: <name>:<line>: …"
	}
	p := &Prompt{tmpl: t}
	sample := contact.Contact{ID: "sample", Name: "Alex Sample", Language: "en",
		Variables: map[string]string{"topic": "your appointment"}}
	out, err := p.System(sample)
	if err != nil {
		return nil, err // "template: <name>:<line>:<col>: executing …"
	}
	if out == "" {
		return nil, fmt.Errorf("template: %s: %w", name, ErrPromptEmpty)
	}
	return p, nil
}

// System renders the system prompt for c.
func (p *Prompt) System(c contact.Contact) (string, error) {
	var b strings.Builder
	data := PromptData{Name: c.Name, Language: c.Language, Variables: c.Variables}
	if err := p.tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}
