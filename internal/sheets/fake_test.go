package sheets_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/callagent/resilience/internal/sheets"
)

const (
	clientEmail   = "call-agent@example-project.iam.gserviceaccount.com"
	accessToken   = "ya29.test-access-token-0123456789"
	spreadsheetID = "1AbCdEfGhIjKlMnOpQrStUvWxYz"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
	keyPEM  string
)

// key returns the test service account's RSA key, generated once per test binary.
func key(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		testKey = k
		keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	return testKey, keyPEM
}

// writeCredentials writes a service-account key file whose token_uri is tokenURL.
func writeCredentials(t *testing.T, tokenURL string) string {
	t.Helper()
	_, pemKey := key(t)
	body, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "example-project",
		"private_key_id": "key-1",
		"private_key":    pemKey,
		"client_email":   clientEmail,
		"token_uri":      tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenServer is a fake OAuth token endpoint that checks the signed JWT assertion.
type tokenServer struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests int
	problems []string
	refuse   bool // answer 400 invalid_grant; set with setRefuse once the sink runs
}

func (ts *tokenServer) setRefuse(v bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.refuse = v
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{t: t}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) URL() string { return ts.Server.URL + "/token" }

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.requests++
	if ts.refuse {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
		return
	}
	if err := r.ParseForm(); err != nil {
		ts.problems = append(ts.problems, "form: "+err.Error())
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		ts.problems = append(ts.problems, fmt.Sprintf("request %s %s", r.Method, r.URL.Path))
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		ts.problems = append(ts.problems, "grant_type "+g)
	}
	if p := checkAssertion(ts.t, r.PostForm.Get("assertion"), ts.URL()); p != "" {
		ts.problems = append(ts.problems, p)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
}

// checkAssertion verifies the JWT's RS256 signature with the test key and its claims; it
// returns what is wrong, or "".
func checkAssertion(t *testing.T, jwt, aud string) string {
	k, _ := key(t)
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "assertion is not a JWT"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "signature encoding: " + err.Error()
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return "signature does not verify: " + err.Error()
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "claims encoding: " + err.Error()
	}
	var claims struct {
		Iss, Scope, Aud string
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "claims: " + err.Error()
	}
	if claims.Iss != clientEmail || claims.Scope != sheets.Scope || claims.Aud != aud {
		return fmt.Sprintf("claims %+v, want iss %s, scope %s, aud %s", claims, clientEmail, sheets.Scope, aud)
	}
	return ""
}

func (ts *tokenServer) check(t *testing.T) int {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, p := range ts.problems {
		t.Errorf("token request: %s", p)
	}
	return ts.requests
}

// appendRequest is one request the fake Sheets API received.
type appendRequest struct {
	Path, Auth, ContentType, UserAgent string
	Status                             int
	Query                              map[string][]string
	Body                               struct {
		Range          string     `json:"range"`
		MajorDimension string     `json:"majorDimension"`
		Values         [][]string `json:"values"`
	}
}

// sheetsServer is a fake Sheets API: it records every append and answers with the next
// scripted status (200 when the script is exhausted).
type sheetsServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []appendRequest
	script   []int
	always   int            // answer this status forever when set
	gate     chan struct{}  // when set, each answer waits for a value or close
	bodies   map[int]string // when set, the error document answered with a status
	location string         // the Location of a 3xx
}

func newSheetsServer(t *testing.T, script ...int) *sheetsServer {
	s := &sheetsServer{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *sheetsServer) serve(w http.ResponseWriter, r *http.Request) {
	var req appendRequest
	req.Path = r.URL.Path
	req.Auth = r.Header.Get("Authorization")
	req.ContentType = r.Header.Get("Content-Type")
	req.UserAgent = r.Header.Get("User-Agent")
	req.Query = r.URL.Query()
	_ = json.NewDecoder(r.Body).Decode(&req.Body)

	s.mu.Lock()
	s.requests = append(s.requests, req)
	status := http.StatusOK
	switch {
	case s.always != 0:
		status = s.always
	case len(s.script) > 0:
		status, s.script = s.script[0], s.script[1:]
	}
	s.requests[len(s.requests)-1].Status = status
	gate, body, location := s.gate, s.bodies[status], s.location
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}

	w.Header().Set("Content-Type", "application/json")
	switch {
	case body != "":
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return
	case status/100 == 3:
		w.Header().Set("Location", location)
		w.WriteHeader(status)
		return
	}
	switch status {
	case http.StatusOK:
		fmt.Fprintf(w, `{"spreadsheetId":%q,"updates":{"updatedRows":%d}}`, spreadsheetID, len(req.Body.Values))
	case http.StatusForbidden:
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`)
	default:
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`, status)
	}
}

// answer sets the error document answered with status from now on.
func (s *sheetsServer) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bodies == nil {
		s.bodies = map[int]string{}
	}
	s.bodies[status] = body
}

func (s *sheetsServer) got() []appendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]appendRequest(nil), s.requests...)
}

// rows returns every row accepted (answered 200), in order.
func (s *sheetsServer) rows() [][]string {
	var out [][]string
	for _, r := range s.got() {
		if r.Status == http.StatusOK {
			out = append(out, r.Body.Values...)
		}
	}
	return out
}
