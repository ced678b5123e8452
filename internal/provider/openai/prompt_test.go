package openai_test

import (
	"errors"
	"github.com/callagent/resilience/internal/config/field"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/provider/openai"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prompt.tmpl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultPrompt(t *testing.T) {
	t.Parallel()
	p, err := openai.LoadPrompt("")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.System(someone)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"en"`, "The person's name is Ada", "- topic: billing", "under 80 words"} {
		if !strings.Contains(got, s) {
			t.Errorf("default prompt lacks %q:\n%s", s, got)
		}
	}
	anonymous, err := p.System(contact.Contact{ID: "x", Phone: "+14155550123"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(anonymous, "name is unknown") || strings.Contains(anonymous, "Facts") || strings.Contains(anonymous, "language") {
		t.Errorf("prompt for a contact with no name, language or variables:\n%s", anonymous)
	}
}

func TestLoadPromptFromFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "You call {{.Name}}.\n{{range $k, $v := .Variables}}{{$k}}={{$v}};{{end}} [{{.Variables.absent}}]\n")
	p, err := openai.LoadPrompt(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.System(someone)
	if err != nil || got != "You call Ada.\ntopic=billing; []" {
		t.Errorf("System = %q, %v", got, err)
	}
}

func TestLoadPromptErrorsNameTheSettingFileAndLine(t *testing.T) {
	t.Parallel()
	parse := writeFile(t, "line one\nline two\nHello {{.Name | nme}}\n")
	exec := writeFile(t, "Hello {{.Name}}\nyour number is {{.Phone}}\n")
	empty := writeFile(t, "{{/* nothing */}}  \n")
	big := writeFile(t, strings.Repeat("x", openai.MaxPromptFileBytes+1))
	missing := filepath.Join(t.TempDir(), "nope.tmpl")
	for path, want := range map[string]string{
		parse:   `PromptFile is not a valid prompt template: template: ` + parse + `:3: function "nme" not defined`,
		exec:    `PromptFile is not a valid prompt template: template: ` + exec + `:2:17: executing "` + exec + `" at <.Phone>: can't evaluate field Phone in type openai.PromptData`,
		empty:   `PromptFile is not a valid prompt template: template: ` + empty + `: renders an empty prompt`,
		big:     `PromptFile ` + big + ` is larger than 64 KiB`,
		missing: `PromptFile cannot be read: open ` + missing + `: no such file or directory`,
	} {
		_, err := openai.LoadPrompt(path)
		if err == nil || err.Error() != want {
			t.Errorf("LoadPrompt(%s):\n got %v\nwant %s", filepath.Base(path), err, want)
		}
		var se *field.Error
		if !errors.As(err, &se) || se.Field != openai.PromptFileField {
			t.Errorf("LoadPrompt(%s) error is not a *field.Error for %s", filepath.Base(path), openai.PromptFileField)
		}
	}
	if _, err := openai.ParsePrompt("x", "   "); !errors.Is(err, openai.ErrPromptEmpty) {
		t.Errorf("blank template: %v", err)
	}
}
