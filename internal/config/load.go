package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
	"github.com/spf13/pflag"

	"github.com/callagent/resilience/internal/redact"
)

// Where a value came from, as Problem.Source and EnvFileError.Source name it.
// A value from the .env file is named by the file's path.
const (
	SourceEnvironment = "environment"
	SourceDefault     = "default"
	sourceFlagPrefix  = "flag --"
)

// Problem is one invalid setting value.
type Problem struct {
	// Setting is the environment name of the setting, e.g. "WORKER_CONCURRENCY".
	Setting string
	// Source is where the value came from: "flag --worker-concurrency",
	// "environment", the .env file's path, or "default".
	Source string
	// Value is the rejected text; "<redacted>" for secret settings, and with
	// phone numbers, URL passwords and key shapes redacted for the others.
	Value string
	// Reason says what is wrong, e.g. "not a whole number".
	Reason string
}

// String formats the problem as one line:
// WORKER_CONCURRENCY="abc" (from environment): not a whole number.
func (p Problem) String() string {
	return fmt.Sprintf("%s=%q (from %s): %s", p.Setting, p.Value, p.Source, p.Reason)
}

// ValidationError lists every invalid setting found by one Load.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per indented line, under a header that counts
// them.
func (e *ValidationError) Error() string {
	var b strings.Builder
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(&b, "invalid configuration (%d %s):", len(e.Problems), noun)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// EnvFileError reports a .env file that could not be read or parsed. Load
// stops at it, since values from a broken file cannot be trusted.
type EnvFileError struct {
	// Path is the file as named.
	Path string
	// Source is where the path came from: "flag --env-file", "environment"
	// or "default".
	Source string
	// Line is the 1-based line of a syntax error; 0 when unknown or when the
	// file could not be read.
	Line int
	// Err is the read error (errors.Is(err, fs.ErrNotExist) for a missing
	// file) or the syntax error, without the file's contents.
	Err error
}

func (e *EnvFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("env file %q (from %s) line %d: %v", e.Path, e.Source, e.Line, e.Err)
	}
	return fmt.Sprintf("env file %q (from %s): %v", e.Path, e.Source, e.Err)
}

// Unwrap returns the underlying read or syntax error.
func (e *EnvFileError) Unwrap() error { return e.Err }

// Loader loads the Config of one binary from its flags, the environment, a
// .env file and the defaults. Create it with Register before the flags are
// parsed; call Load after.
type Loader struct {
	// EnvNames, when set, lists the names of the environment's variables: Load warns about
	// those with a prefix of this project's settings that name no setting. The mains set it
	// (from os.Environ); nil skips the check.
	EnvNames func() []string

	fs       *pflag.FlagSet
	scope    Scope
	table    []setting
	flags    map[string]*rawValue // by environment name
	hostname func() (string, error)
	pid      func() int
	readFile func(string) ([]byte, error)
	warnings []string
	// skipComponents leaves out the components' own validation (tests of the table alone).
	skipComponents bool
}

// Warnings returns the warnings of the last Load: unknown names in the .env file and in
// the environment, each with the closest setting. The mains print them on stderr.
func (l *Loader) Warnings() []string { return l.warnings }

// Register adds a flag for every setting in scope (and --env-file) to fs and
// returns the Loader that reads them. The flags are string-valued: bad values
// are reported by Load, together with every other problem, not by the flag
// parser. Boolean flags work alone (--embedded-nats means true). A nil fs
// registers nothing; Load then reads the environment, .env and defaults only.
func Register(fs *pflag.FlagSet, scope Scope) *Loader {
	return register(fs, scope, table)
}

func register(fs *pflag.FlagSet, scope Scope, rows []setting) *Loader {
	l := &Loader{
		fs:       fs,
		scope:    scope,
		table:    rows,
		flags:    map[string]*rawValue{},
		hostname: os.Hostname,
		pid:      os.Getpid,
		readFile: os.ReadFile,
	}
	if fs == nil {
		return l
	}
	for _, s := range rows {
		if s.Scope&scope == 0 || s.Secret {
			continue // secrets are never flags: the command line shows in ps
		}
		v := &rawValue{s: s.Default, typ: s.bind.typ}
		if v.typ == "" {
			v.typ = "string"
		}
		f := fs.VarPF(v, s.Flag, "", s.Description+" (env "+s.Env+")")
		if v.typ == "bool" {
			f.NoOptDefVal = "true"
		}
		l.flags[s.Env] = v
	}
	return l
}

// rawValue is a flag that keeps its text for Load to parse.
type rawValue struct {
	s   string
	typ string
}

// String returns the text.
func (v *rawValue) String() string { return v.s }

// Set stores the text; it never fails, so every problem is reported by Load.
func (v *rawValue) Set(s string) error { v.s = s; return nil }

// Type names the value in help: "int", "duration", "bool", "string", ...
func (v *rawValue) Type() string { return v.typ }

// Load resolves every setting in the Loader's scope from, in order of
// precedence, a flag given on the command line, the environment (through
// lookupEnv; nil means an empty environment), the .env file and the default,
// then validates them all. Settings outside the scope keep their defaults.
// An empty Worker.ID is computed as <hostname>-<pid>. A secret is never a
// flag; its value may also be the trimmed content of the file X_FILE names.
//
// Validation is every setting's own rule, then the options of every component
// built from them, before anything connects: the alert topology, and in the
// worker the provider clients (SIMULATE unset) and the enabled alert channels.
// Each component names its bad options by field; Load reports each under its
// setting and source, once. Unknown names in .env and in EnvNames are not
// errors: they are in Warnings.
//
// It returns a *ValidationError listing every invalid value, or an
// *EnvFileError when the .env file cannot be read or parsed. The .env file is
// --env-file, else ENV_FILE, else ".env" (which may be missing); it never
// changes the process environment.
func (l *Loader) Load(lookupEnv func(string) (string, bool)) (Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	l.warnings = nil
	dotenv, dotenvPath, err := l.readEnvFile(lookupEnv)
	if err != nil {
		return Config{}, err
	}
	l.warnUnknown(dotenv, dotenvPath)

	var c Config
	// Problems are redacted once every secret value is known (see redactSecrets).
	var pending []pendingProblem
	var secrets []string // the resolved values of every secret setting in scope
	type loaded struct{ raw, source string }
	ok := map[string]loaded{} // settings in scope that loaded without a problem
	for _, s := range l.table {
		if s.bind.set == nil {
			continue
		}
		if s.Scope&l.scope == 0 {
			if err := s.bind.set(&c, s.Default); err != nil {
				panic(fmt.Sprintf("config: default of %s %q is invalid: %v", s.Env, s.Default, err))
			}
			continue
		}
		raw, source, fileErr := l.lookup(s, lookupEnv, dotenv, dotenvPath)
		if fileErr != nil {
			pending = append(pending, *fileErr)
			continue
		}
		if s.Secret {
			secrets = append(secrets, raw)
		}
		if err := s.bind.set(&c, raw); err != nil {
			pending = append(pending, pendingProblem{s, source, raw, err.Error()})
			continue
		}
		ok[s.Env] = loaded{raw, source}
	}

	for _, r := range crossRules {
		blamed, found := ok[r.env]
		if !found || !allLoaded(ok, r.deps) {
			continue
		}
		if reason := r.check(&c); reason != "" {
			s, _ := l.row(r.env)
			pending = append(pending, pendingProblem{s, blamed.source, blamed.raw, reason})
		}
	}

	if !l.skipComponents {
		pending = append(pending, l.componentProblems(&c, pending, func(env string) (string, string, bool) {
			v, found := ok[env]
			return v.raw, v.source, found
		})...)
	}

	if len(pending) > 0 {
		red := redactSecrets(secrets)
		problems := make([]Problem, 0, len(pending))
		for _, p := range pending {
			problems = append(problems, newProblem(red, p.s, p.source, p.raw, p.reason))
		}
		order := map[string]int{}
		for i, s := range l.table {
			order[s.Env] = i
			order[s.Env+fileSuffix] = i
		}
		// Stable: a setting's own problem comes before a cross-rule one.
		slices.SortStableFunc(problems, func(a, b Problem) int { return order[a.Setting] - order[b.Setting] })
		return Config{}, &ValidationError{Problems: problems}
	}

	if _, found := ok["WORKER_ID"]; found && c.Worker.ID == "" {
		c.Worker.ID = defaultWorkerID(l.hostname, l.pid())
	}
	return c, nil
}

func allLoaded[V any](ok map[string]V, envs []string) bool {
	for _, e := range envs {
		if _, found := ok[e]; !found {
			return false
		}
	}
	return true
}

func (l *Loader) row(env string) (setting, bool) {
	for _, s := range l.table {
		if s.Env == env {
			return s, true
		}
	}
	return setting{}, false
}

// fileSuffix names the setting that gives a secret's value as a file: LLM_API_KEY_FILE.
const fileSuffix = "_FILE"

// lookup returns a setting's raw text and where it came from. A secret is never a flag; it
// may come from X or from the file X_FILE names (trimmed), in the environment or the .env
// file; an empty X_FILE is not set. A file that cannot be read is a problem of X_FILE.
func (l *Loader) lookup(s setting, lookupEnv func(string) (string, bool), dotenv map[string]string, dotenvPath string) (raw, source string, fileErr *pendingProblem) {
	if v, found := l.flags[s.Env]; found && l.fs.Lookup(s.Flag).Changed {
		return v.s, sourceFlagPrefix + s.Flag, nil
	}
	fromFile := func(path, where string) (string, string, *pendingProblem) {
		fileSetting := s
		fileSetting.Env, fileSetting.Secret = s.Env+fileSuffix, false
		b, err := l.readFile(path)
		if err != nil {
			return "", where, &pendingProblem{fileSetting, where, path, "cannot read the file: " + pathError(err)}
		}
		return strings.TrimSpace(string(b)), "file " + path + " (" + s.Env + fileSuffix + " from " + where + ")", nil
	}
	if v, found := lookupEnv(s.Env); found {
		return v, SourceEnvironment, nil
	}
	if v, found := lookupEnv(s.Env + fileSuffix); found && s.Secret && v != "" {
		return fromFile(v, SourceEnvironment)
	}
	if v, found := dotenv[s.Env]; found {
		return v, dotenvPath, nil
	}
	if v, found := dotenv[s.Env+fileSuffix]; found && s.Secret && v != "" {
		return fromFile(v, dotenvPath)
	}
	return s.Default, SourceDefault, nil
}

// pathError is err without the path os.ReadFile puts in front of it.
func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// pendingProblem is a problem found before every secret value is known.
type pendingProblem struct {
	s                   setting
	source, raw, reason string
}

// MinRedactedSecretLen is the shortest secret value redacted from the problems of other
// settings; shorter ones would blank out ordinary words and numbers.
const MinRedactedSecretLen = 8

// redactSecrets returns a Redactor that knows the resolved value of every secret setting
// (as given and trimmed) of at least MinRedactedSecretLen characters. A secret can show up
// in another setting's value: godotenv expands LOG_LEVEL=${LLM_API_KEY}, and a value pasted
// into the wrong setting is still a secret.
func redactSecrets(values []string) *redact.Redactor {
	r := redact.New()
	for _, v := range values {
		for _, s := range []string{v, strings.TrimSpace(v)} {
			if len(s) >= MinRedactedSecretLen {
				r.Add(s)
			}
		}
	}
	return r
}

// newProblem builds the problem of setting s, redacted with r: a secret setting's value is
// the placeholder; another's value and every reason have the secrets r knows, credential
// shapes and phone numbers redacted.
func newProblem(r *redact.Redactor, s setting, source, raw, reason string) Problem {
	value := r.Text(raw)
	if s.Secret {
		value = redact.Placeholder
	}
	return Problem{Setting: s.Env, Source: source, Value: value, Reason: r.Text(reason)}
}

// readEnvFile finds and parses the .env file. A missing default file yields
// no values; a missing file named by flag or environment is an error.
func (l *Loader) readEnvFile(lookupEnv func(string) (string, bool)) (map[string]string, string, error) {
	path, source := defaultEnvFile, SourceDefault
	if v, found := l.flags[envFileEnv]; found && l.fs.Lookup(flagName(envFileEnv)).Changed {
		path, source = v.s, sourceFlagPrefix+flagName(envFileEnv)
	} else if v, found := lookupEnv(envFileEnv); found {
		path, source = v, SourceEnvironment
	}
	if path == "" {
		return nil, "", nil
	}
	content, err := os.ReadFile(path)
	if err != nil {
		if source == SourceDefault && errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		return nil, "", &EnvFileError{Path: path, Source: source, Err: err}
	}
	values, err := godotenv.UnmarshalBytes(content)
	if err != nil {
		line, reason := locateEnvError(content, err)
		return nil, "", &EnvFileError{Path: path, Source: source, Line: line, Err: errors.New(reason)}
	}
	return values, path, nil
}

var (
	badKeyError     = regexp.MustCompile(`^(unexpected character "(?:[^"\\]|\\.)*" in variable name) near ("(?:[^"\\]|\\.)*")$`)
	unterminatedErr = regexp.MustCompile(`(?s)^unterminated quoted value (.*)$`)
)

// locateEnvError turns a godotenv syntax error into a line number and a
// reason without the file's text: godotenv quotes the rest of the file in its
// messages, and a .env file holds API keys. It returns line 0 and the message
// as it is when the message has an unknown form.
func locateEnvError(content []byte, err error) (line int, reason string) {
	text := bytes.ReplaceAll(content, []byte("\r\n"), []byte("\n")) // as godotenv sees it
	msg := err.Error()
	lineAt := func(offset int) int { return bytes.Count(text[:offset], []byte("\n")) + 1 }

	if m := badKeyError.FindStringSubmatch(msg); m != nil {
		// The quoted text is the rest of the file from the start of the
		// statement with the bad name.
		if rest, qerr := strconv.Unquote(m[2]); qerr == nil && bytes.HasSuffix(text, []byte(rest)) {
			return lineAt(len(text) - len(rest)), m[1]
		}
		return 0, m[1]
	}
	if m := unterminatedErr.FindStringSubmatch(msg); m != nil && m[1] != "" {
		// The value starts at an opening quote that no later unescaped
		// quote of the same kind closes: the last unescaped one.
		quote := m[1][0]
		for i := len(text) - 1; i >= 0; i-- {
			if text[i] == quote && (i == 0 || text[i-1] != '\\') {
				if bytes.HasPrefix(text[i:], []byte(m[1])) {
					return lineAt(i), "unterminated quoted value"
				}
				break
			}
		}
		return 0, "unterminated quoted value"
	}
	return 0, msg
}

// defaultWorkerID is <hostname>-<pid>, with characters WORKER_ID does not
// allow replaced by '-' and the host name shortened to fit 64 characters.
func defaultWorkerID(hostname func() (string, error), pid int) string {
	host, err := hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.Map(func(r rune) rune {
		if r < 0x80 && workerIDPattern.MatchString(string(r)) {
			return r
		}
		return '-'
	}, host)
	suffix := "-" + strconv.Itoa(pid)
	if len(host)+len(suffix) > maxWorkerIDLen {
		host = host[:maxWorkerIDLen-len(suffix)]
	}
	return host + suffix
}
