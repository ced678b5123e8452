package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// binder parses one setting's raw text, validates it and stores it in a
// Config. Every binder is built by field, so adding a setting is one table row.
type binder struct {
	// typ names the value in flag help: "int", "duration", "bool", ...
	typ string
	// secret hides the value in problems and flag help.
	secret bool
	// ptr returns the address of the field in c; it names the field in
	// Settings and lets tests check that every field has a setting.
	ptr func(c *Config) any
	// set parses raw, validates it and stores it in c, or returns the reason
	// it is invalid (never containing a secret value).
	set func(c *Config, raw string) error
}

// check validates a parsed value; it returns "" when the value is fine or the
// reason it is not.
type check[T any] func(T) string

// field builds a binder from a parser, the field's address and its checks.
// Raw text is trimmed of surrounding whitespace before parsing.
func field[T any](typ string, parse func(string) (T, error), ptr func(*Config) *T, checks ...check[T]) binder {
	return binder{
		typ: typ,
		ptr: func(c *Config) any { return ptr(c) },
		set: func(c *Config, raw string) error {
			v, err := parse(strings.TrimSpace(raw))
			if err != nil {
				return err
			}
			for _, chk := range checks {
				if reason := chk(v); reason != "" {
					return errors.New(reason)
				}
			}
			*ptr(c) = v
			return nil
		},
	}
}

func intField(ptr func(*Config) *int, checks ...check[int]) binder {
	return field("int", parseInt, ptr, checks...)
}

func floatField(ptr func(*Config) *float64, checks ...check[float64]) binder {
	return field("float", parseFloat, ptr, checks...)
}

func durationField(ptr func(*Config) *time.Duration, checks ...check[time.Duration]) binder {
	return field("duration", parseDuration, ptr, checks...)
}

func boolField(ptr func(*Config) *bool) binder {
	return field("bool", parseBool, ptr)
}

func stringField(ptr func(*Config) *string, checks ...check[string]) binder {
	return field("string", parseString, ptr, checks...)
}

// secretField is a string setting whose value never appears in problems,
// flag help or printed configuration.
func secretField(ptr func(*Config) *Secret, checks ...check[string]) binder {
	b := field("string", parseString, func(c *Config) *string { return (*string)(ptr(c)) }, checks...)
	b.ptr = func(c *Config) any { return ptr(c) }
	b.secret = true
	return b
}

// enumField accepts one of the values options returns (compared without
// regard to case and stored in its canonical spelling), or "" when allowEmpty.
// noun names the kind of value in the rejection: "unknown level; one of: ...".
// options is a function so that exported lists such as Scenarios can grow.
func enumField(ptr func(*Config) *string, noun string, allowEmpty bool, options func() []string) binder {
	parse := func(s string) (string, error) {
		if s == "" && allowEmpty {
			return "", nil
		}
		for _, o := range options() {
			if strings.EqualFold(s, o) {
				return o, nil
			}
		}
		return "", fmt.Errorf("unknown %s; one of: %s", noun, strings.Join(options(), ", "))
	}
	return field("string", parse, ptr)
}

func parseString(s string) (string, error) { return s, nil }

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errors.New("whole number out of range")
		}
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("not a number")
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a finite number")
	}
	return f, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (use Go syntax such as 250ms, 5s, 1m30s)")
	}
	return d, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errors.New("not a boolean (use true, false, 1, 0, yes or no)")
}

// atLeast rejects values below min.
func atLeast[T cmp.Ordered](min T) check[T] {
	return func(v T) string {
		if v < min {
			return fmt.Sprintf("must be at least %v", min)
		}
		return ""
	}
}

// nonNegative rejects values below zero.
func nonNegative[T cmp.Ordered](v T) string {
	var zero T
	if v < zero {
		return "must not be negative"
	}
	return ""
}

// positive rejects zero and negative values.
func positive[T cmp.Ordered](v T) string {
	var zero T
	if v <= zero {
		return "must be greater than 0"
	}
	return ""
}

// between rejects values outside [lo, hi].
func between[T cmp.Ordered](lo, hi T) check[T] {
	return func(v T) string {
		if v < lo || v > hi {
			return fmt.Sprintf("must be between %v and %v", lo, hi)
		}
		return ""
	}
}

// nonEmpty rejects the empty string.
func nonEmpty(v string) string {
	if v == "" {
		return "must not be empty"
	}
	return ""
}

// natsName accepts a JetStream stream or consumer name: non-empty, without
// whitespace, '.', '*', '>', '/' or '\'. kind is "stream" or "consumer".
func natsName(kind string) check[string] {
	return func(v string) string {
		if v == "" {
			return "must not be empty"
		}
		for _, r := range v {
			if unicode.IsSpace(r) {
				return fmt.Sprintf("invalid %s name: contains whitespace", kind)
			}
			if strings.ContainsRune(`.*>/\`, r) {
				return fmt.Sprintf("invalid %s name: contains %q", kind, string(r))
			}
		}
		return ""
	}
}

// providerURL is the provider clients' own rule for their URLs (see httpx.URLProblem): the
// setting and the component share it. queryOK for endpoints (webhooks), not base URLs.
func providerURL(optional, queryOK bool) check[string] {
	return func(v string) string {
		if strings.TrimSpace(v) == "" {
			if optional {
				return ""
			}
			return "must not be empty"
		}
		return httpx.URLProblem(v, queryOK)
	}
}

// voiceID is the ElevenLabs client's own rule for a voice id (blank is left to the
// client's required check).
func voiceID(v string) string { return elevenlabs.VoiceIDProblem(v) }

// elevenlabsFormat is the ElevenLabs client's own rule for an output format.
func elevenlabsFormat(v string) string {
	if v == "" {
		return "must not be empty"
	}
	return elevenlabs.OutputFormatProblem(v)
}

// channelURL is the alert channels' own rule for their URLs (see alert.URLProblem).
func channelURL(optional bool) check[string] {
	return func(v string) string {
		if strings.TrimSpace(v) == "" {
			if optional {
				return ""
			}
			return "must not be empty"
		}
		return alert.URLProblem(v)
	}
}

// alertName is the alert package's own rule for its stream, consumer and bucket names (see
// alert.NameProblem): the setting and the component share it.
func alertName(kind string) check[string] {
	return func(v string) string { return alert.NameProblem(kind, v) }
}

// literalSubject accepts a NATS subject without wildcards: non-empty
// dot-separated tokens without whitespace, '*' or '>'.
func literalSubject(v string) string {
	if v == "" {
		return "must not be empty"
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return "invalid subject: contains whitespace"
	}
	if strings.ContainsAny(v, "*>") {
		return "invalid subject: wildcards (* and >) are not allowed"
	}
	if slices.Contains(strings.Split(v, "."), "") {
		return "invalid subject: empty token (leading, trailing or double dot)"
	}
	return ""
}

var bucketName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// kvBucket accepts a JetStream key-value bucket name.
func kvBucket(v string) string {
	if v == "" {
		return "must not be empty"
	}
	if !bucketName.MatchString(v) {
		return "invalid bucket name: only letters, digits, _ and - are allowed"
	}
	return ""
}

// maxWorkerIDLen is the longest WORKER_ID.
const maxWorkerIDLen = 64

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]*$`)

// workerID accepts an empty ID (Load computes one) or up to 64 letters,
// digits, '.', '_' and '-'.
func workerID(v string) string {
	if !workerIDPattern.MatchString(v) {
		return "invalid worker id: only letters, digits, ., _ and - are allowed"
	}
	if len(v) > maxWorkerIDLen {
		return fmt.Sprintf("must be at most %d characters", maxWorkerIDLen)
	}
	return ""
}

// natsSchemes are the URL schemes nats.go connects with.
var natsSchemes = []string{"nats", "tls", "ws", "wss"}

// natsURLs accepts one or more comma-separated NATS server URLs, each with a
// scheme from natsSchemes, a host and a port.
func natsURLs(v string) string {
	if v == "" {
		return "must not be empty"
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		where := ""
		if len(parts) > 1 {
			where = fmt.Sprintf("URL %d: ", i+1)
		}
		if reason := natsURL(strings.TrimSpace(p)); reason != "" {
			return where + reason
		}
	}
	return ""
}

func natsURL(s string) string {
	if s == "" {
		return "empty URL"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "not a URL (want scheme://host:port)"
	}
	if !slices.Contains(natsSchemes, strings.ToLower(u.Scheme)) {
		return fmt.Sprintf("scheme %q is not one of %s", u.Scheme, strings.Join(natsSchemes, ", "))
	}
	if u.Hostname() == "" {
		return "missing host (want scheme://host:port)"
	}
	port := u.Port()
	if port == "" {
		return "missing port (want scheme://host:port)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "port must be between 1 and 65535"
	}
	return ""
}

// existingFile accepts "" (not set) or the path of an existing regular file.
func existingFile(v string) string {
	if v == "" {
		return ""
	}
	fi, err := os.Stat(v)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "file does not exist"
	case err != nil:
		return fmt.Sprintf("cannot read file: %v", err)
	case fi.IsDir():
		return "is a directory, not a file"
	}
	return ""
}

// jsonObject accepts "" or a JSON object.
func jsonObject(v string) string {
	if v == "" {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return "not a JSON object"
	}
	return ""
}

// listenAddr accepts "" (disabled) or host:port with a port from 0 to 65535.
func listenAddr(v string) string {
	if v == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "not host:port (e.g. :8397 or 127.0.0.1:8397)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "port must be between 0 and 65535"
	}
	return ""
}

var sheetIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// sheetID accepts "" or a spreadsheet id.
func sheetID(v string) string {
	if !sheetIDPattern.MatchString(v) {
		return "not a spreadsheet id (letters, digits, '_' and '-')"
	}
	return ""
}
