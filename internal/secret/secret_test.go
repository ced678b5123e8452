package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/secret"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	const value = "sk-live-0123456789abcdef"
	s := secret.Secret(value)
	type holder struct {
		Name string
		Key  secret.Secret
		Ptr  *secret.Secret
	}
	h := holder{Name: "elevenlabs", Key: s, Ptr: &s}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%-10v"} {
		outputs["secret "+verb] = fmt.Sprintf(verb, s)
		outputs["struct "+verb] = fmt.Sprintf(verb, h)
		outputs["pointer "+verb] = fmt.Sprintf(verb, &s)
	}
	outputs["Sprint"] = fmt.Sprint(s, h)
	outputs["String"] = s.String()
	outputs["GoString"] = s.GoString()
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	outputs["text"] = string(text)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "key", s)
	outputs["slog"] = buf.String()

	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	exact := map[string]string{
		"secret %v":  "<secret>",
		"secret %s":  "<secret>",
		"secret %#v": "<secret>",
		"secret %q":  `"<secret>"`,
		"struct %+v": "{Name:elevenlabs Key:<secret> Ptr:<secret>}",
		"text":       "<secret>",
		"String":     "<secret>",
		"GoString":   "<secret>",
	}
	for name, want := range exact {
		if outputs[name] != want {
			t.Errorf("%s = %q, want %q", name, outputs[name], want)
		}
	}
	var decoded map[string]string
	if err := json.Unmarshal(j, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded["Key"] != "<secret>" || decoded["Ptr"] != "<secret>" {
		t.Errorf("json = %s, want Key and Ptr as \"<secret>\"", j)
	}
	if !strings.Contains(outputs["slog"], `"key":"<secret>"`) {
		t.Errorf("slog output %q lacks the mask", outputs["slog"])
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q, want the value", s.Reveal())
	}
}

func TestEmptySecretPrintsEmpty(t *testing.T) {
	t.Parallel()
	var s secret.Secret
	j, _ := json.Marshal(s)
	got := []string{fmt.Sprintf("%v|%s|%#v|%q", s, s, s, s), string(j)}
	want := []string{`||""|""`, `""`}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("empty secret printed %q, want %q", got[i], want[i])
		}
	}
}
