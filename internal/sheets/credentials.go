package sheets

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"

	"golang.org/x/oauth2/jwt"
)

// Scope is the OAuth scope the sink asks for: read and write spreadsheets.
const Scope = "https://www.googleapis.com/auth/spreadsheets"

// DefaultTokenURL is Google's token endpoint, used when the credentials file names none.
const DefaultTokenURL = "https://oauth2.googleapis.com/token"

// ErrCredentials is wrapped by every error about the service-account credentials file.
var ErrCredentials = errors.New("invalid google service account credentials")

// serviceAccount is the part of a Google service-account key file the sink needs.
type serviceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// loadCredentials reads a service-account JSON key file and returns the JWT flow for it. The
// token URL comes from the file's token_uri (Google's by default). Errors name the file and
// the field, never the key.
func loadCredentials(path string) (*jwt.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no credentials file given", ErrCredentials)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrCredentials, path, err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(raw, &sa); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON key file: %v", ErrCredentials, path, jsonErrorOnly(err))
	}
	switch {
	case sa.Type != "service_account":
		return nil, fmt.Errorf("%w: %s: type is %q, want \"service_account\"", ErrCredentials, path, sa.Type)
	case sa.ClientEmail == "":
		return nil, fmt.Errorf("%w: %s: client_email is empty", ErrCredentials, path)
	case sa.PrivateKey == "":
		return nil, fmt.Errorf("%w: %s: private_key is empty", ErrCredentials, path)
	}
	if err := checkKey([]byte(sa.PrivateKey)); err != nil {
		return nil, fmt.Errorf("%w: %s: private_key: %v", ErrCredentials, path, err)
	}
	tokenURL := sa.TokenURI
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	if u, err := url.Parse(tokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s: token_uri %q is not an http(s) URL", ErrCredentials, path, tokenURL)
	}
	return &jwt.Config{
		Email:        sa.ClientEmail,
		PrivateKey:   []byte(sa.PrivateKey),
		PrivateKeyID: sa.PrivateKeyID,
		Scopes:       []string{Scope},
		TokenURL:     tokenURL,
	}, nil
}

// checkKey makes sure the key is an RSA private key in PEM (PKCS#8 or PKCS#1), as
// golang.org/x/oauth2/jwt needs, so a bad file fails at start rather than at the first log.
func checkKey(key []byte) error {
	block, _ := pem.Decode(key)
	if block == nil {
		return errors.New("not a PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return errors.New("not an RSA key")
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return errors.New("not a PKCS#8 or PKCS#1 RSA private key")
	}
	return nil
}

// jsonErrorOnly keeps a JSON syntax error's position but not the offending text, which could
// be part of the key.
func jsonErrorOnly(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("syntax error at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("field %s has the wrong type", typ.Field)
	}
	return errors.New("cannot decode")
}
