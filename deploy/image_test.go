package deploy_test

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Paths from this package's directory (deploy/).
const (
	dockerfilePath   = "Dockerfile"
	repoRoot         = ".."
	dockerignorePath = "../.dockerignore"
)

// instruction is one Dockerfile instruction with its arguments, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, COPY, USER, ...
	args []string
}

func readDockerfile(t testing.TB) []instruction {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var line strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(text, "\\"); ok {
			line.WriteString(rest + " ")
			continue
		}
		line.WriteString(text)
		fields := strings.Fields(line.String())
		line.Reset()
		out = append(out, instruction{strings.ToUpper(fields[0]), fields[1:]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutFlags drops an instruction's --flags (FROM --platform=..., COPY --from=...).
func withoutFlags(args []string) (rest []string, flags []string) {
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			flags = append(flags, a)
		} else {
			rest = append(rest, a)
		}
	}
	return rest, flags
}

var goDirective = regexp.MustCompile(`(?m)^go\s+(\d+)\.(\d+)(?:\.(\d+))?\s*$`)

// TestDockerfileGoVersionMatchesGoMod: every golang build stage uses go.mod's Go version,
// as major.minor or exactly. The official images set GOTOOLCHAIN=local, so an older Go
// refuses to build the module, and a newer minor builds with other semantics than CI.
func TestDockerfileGoVersionMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goDirective.FindStringSubmatch(string(mod))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	full, short := m[1]+"."+m[2], m[1]+"."+m[2]
	if m[3] != "" {
		full += "." + m[3]
	}
	found := 0
	for _, in := range readDockerfile(t) {
		if in.cmd != "FROM" {
			continue
		}
		args, _ := withoutFlags(in.args)
		image := args[0]
		ref := strings.TrimPrefix(strings.TrimPrefix(image, "docker.io/"), "library/")
		name, tag, _ := strings.Cut(strings.SplitN(ref, "@", 2)[0], ":")
		if name != "golang" {
			continue
		}
		found++
		version, _, _ := strings.Cut(tag, "-") // 1.26.8-bookworm
		if version != full && version != short {
			t.Errorf("%s: FROM %s: Go %q, go.mod says go %s: use golang:%s or golang:%s", dockerfilePath, image, version, full, short, full)
		}
	}
	if found == 0 {
		t.Errorf("%s: no FROM golang:<version> build stage", dockerfilePath)
	}
}

// TestImageUserMatchesRunAsUser: the image's final USER is numeric and non-root (so the
// kubelet can verify runAsNonRoot) and the Deployments run as that user.
func TestImageUserMatchesRunAsUser(t *testing.T) {
	var user string
	for _, in := range readDockerfile(t) {
		switch in.cmd {
		case "FROM":
			user = "" // a new stage starts as its base image's user
		case "USER":
			user = in.args[0]
		}
	}
	uidText, _, _ := strings.Cut(user, ":")
	uid, err := strconv.ParseInt(uidText, 10, 64)
	if err != nil || uid == 0 {
		t.Fatalf("%s: the final stage's USER is %q; want a numeric non-root user such as 65532:65532", dockerfilePath, user)
	}
	for _, dep := range loadManifests(t).deployments {
		pod := dep.Spec.Template.Spec.SecurityContext
		for _, c := range allContainers(&dep.Spec.Template.Spec) {
			var got *int64
			if c.SecurityContext != nil {
				got = c.SecurityContext.RunAsUser
			}
			if got == nil && pod != nil {
				got = pod.RunAsUser
			}
			if got != nil && *got != uid {
				t.Errorf("Deployment %s container %s: runAsUser %d, the image's USER is %d", dep.Name, c.Name, *got, uid)
			}
		}
	}
}

// ignoreRule is one .dockerignore line.
type ignoreRule struct {
	re      *regexp.Regexp
	include bool // a "!" line: brings matching paths back
}

// readDockerignore parses .dockerignore with Docker's rules: patterns are relative to the
// context root, "**" matches any number of directories, a pattern that matches a directory
// matches everything in it, and the last matching line wins.
func readDockerignore(t testing.TB) []ignoreRule {
	t.Helper()
	data, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatalf("%v: the build context would hold everything, .git and local secrets included", err)
	}
	var rules []ignoreRule
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			line, r.include = strings.TrimSpace(rest), true
		}
		if strings.ContainsAny(line, `[\`) {
			t.Fatalf(".dockerignore %q: this test's matcher knows *, ? and ** only", line)
		}
		line = strings.TrimPrefix(path.Clean(line), "/")
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				b.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				b.WriteString(".*")
				i++
			case line[i] == '*':
				b.WriteString("[^/]*")
			case line[i] == '?':
				b.WriteString("[^/]")
			default:
				b.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		b.WriteString("$")
		r.re = regexp.MustCompile(b.String())
		rules = append(rules, r)
	}
	return rules
}

// ignored reports whether .dockerignore leaves p (slash-separated, from the root) out of the
// build context.
func ignored(rules []ignoreRule, p string) bool {
	out := false
	for _, r := range rules {
		for q := p; q != "." && q != "/"; q = path.Dir(q) {
			if r.re.MatchString(q) {
				out = !r.include
				break
			}
		}
	}
	return out
}

// TestDockerignore: what the build needs is in the context (the Dockerfile's COPY sources,
// the module and its packages); build output, logs, data, tests' binaries, version control
// and local secrets are not.
func TestDockerignore(t *testing.T) {
	rules := readDockerignore(t)
	for _, p := range []string{
		".git", ".git/HEAD", "bin", "bin/worker", "logs/error_recovery.log", "data/jetstream/x",
		"contact.test", "internal/queue/queue.test", "cover.out", "internal/x/profile.out", "coverage.html",
		".env", ".env.local", "deploy/.env", "internal/x/.env", ".vscode/settings.json", ".idea/x.xml", "x.go.swp",
	} {
		if !ignored(rules, p) {
			t.Errorf(".dockerignore: %s is sent to the build context; leave it out", p)
		}
	}
	keep := []string{"go.mod", "go.sum", "worker/main.go", "publisher/main.go", "internal/config/settings.go",
		"internal/provider/openai/default_prompt.tmpl", "deploy/contacts.json"}
	for _, in := range readDockerfile(t) {
		args, flags := withoutFlags(in.args)
		if (in.cmd != "COPY" && in.cmd != "ADD") || len(args) < 2 || strings.Contains(strings.Join(flags, " "), "--from") {
			continue
		}
		for _, src := range args[:len(args)-1] {
			src = strings.TrimPrefix(path.Clean(src), "/")
			if src == "." {
				continue
			}
			keep = append(keep, src)
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(src))); err != nil {
				t.Errorf("%s: COPY %s: %v", dockerfilePath, src, err)
			}
		}
	}
	for _, p := range keep {
		if ignored(rules, p) {
			t.Errorf(".dockerignore leaves out %s, which the image's build needs", p)
		}
	}
}

// TestDockerfileReferences: the Dockerfile lives in deploy/ only, and what builds the image
// (docker compose, make docker) names it there.
func TestDockerfileReferences(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, "Dockerfile")); err == nil {
		t.Error("a Dockerfile at the repository root: it lives in deploy/Dockerfile")
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build any `json:"build"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue
		}
		build, ok := svc.Build.(map[string]any)
		if !ok {
			t.Errorf("docker-compose.yml: service %s: build is %v; want {context: ., dockerfile: deploy/Dockerfile}", name, svc.Build)
			continue
		}
		context, _ := build["context"].(string)
		dockerfile, _ := build["dockerfile"].(string)
		if context == "" || dockerfile == "" {
			t.Errorf("docker-compose.yml: service %s: build needs context and dockerfile, got %v", name, build)
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, context, dockerfile)); err != nil {
			t.Errorf("docker-compose.yml: service %s: %v", name, err)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(makefile), "\n") {
		if strings.Contains(line, "docker build") && !strings.Contains(line, "-f deploy/Dockerfile") {
			t.Errorf("Makefile: %q does not name -f deploy/Dockerfile", strings.TrimSpace(line))
		}
	}
}
