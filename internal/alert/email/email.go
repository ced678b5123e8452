// Package email sends alert notifications by SMTP through github.com/wneessen/go-mail (Go's
// net/smtp is frozen), with STARTTLS mandatory: a server that does not offer it, or whose
// certificate does not verify, gets nothing, and credentials never cross in clear text.
package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/redact"
)

// Name is the channel's display name.
const Name = "Email"

// Defaults for Options.
const (
	DefaultPort    = 587
	DefaultTimeout = 10 * time.Second
)

// maxBody bounds the mail body, in characters.
const maxBody = 20000

// Options configures a Notifier.
type Options struct {
	// Host (SMTP_HOST) is the SMTP server, e.g. smtp.gmail.com.
	Host string
	// Port (SMTP_PORT, default 587) is its submission port; the session starts in clear
	// text and must switch to TLS with STARTTLS.
	Port int
	// Username (SMTP_USERNAME, default From) and Password (EMAIL_PASSWORD) authenticate with
	// AUTH PLAIN, only ever inside TLS. An empty Password sends without authenticating.
	Username string
	Password config.Secret
	// From (EMAIL_FROM) is the sender address.
	From string
	// To (EMAIL_TO, comma-separated) are the recipients.
	To []string
	// RootCAs verifies the server's certificate; nil uses the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the connection (default 10s); the context bounds the whole attempt.
	Timeout time.Duration
}

// Notifier sends each notification as one plain-text email. Safe for concurrent use.
type Notifier struct {
	client *gomail.Client
	from   string
	to     []string
	host   string
	secret string
}

// New checks o and returns a Notifier; it does not connect. Errors name the setting.
func New(o Options) (*Notifier, error) {
	if strings.TrimSpace(o.Host) == "" {
		return nil, errors.New("SMTP_HOST is required")
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, fmt.Errorf("SMTP_PORT must be 1 to 65535, got %d", o.Port)
	}
	if _, err := mail.ParseAddress(o.From); err != nil {
		return nil, fmt.Errorf("EMAIL_FROM %q is not an email address", o.From)
	}
	var to []string
	for _, a := range o.To {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, err := mail.ParseAddress(a); err != nil {
			return nil, fmt.Errorf("EMAIL_TO %q is not an email address", a)
		}
		to = append(to, a)
	}
	if len(to) == 0 {
		return nil, errors.New("EMAIL_TO needs at least one address")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Username == "" {
		o.Username = o.From
	}
	opts := []gomail.Option{
		gomail.WithPort(o.Port),
		gomail.WithTLSPolicy(gomail.TLSMandatory),
		gomail.WithTLSConfig(&tls.Config{ServerName: o.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}),
		gomail.WithTimeout(o.Timeout),
	}
	if o.Password != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(o.Username), gomail.WithPassword(o.Password.Reveal()))
	}
	c, err := gomail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", o.Host, err)
	}
	return &Notifier{client: c, from: o.From, to: to, host: o.Host, secret: o.Password.Reveal()}, nil
}

// Message builds the email for n: subject "[SEVERITY] title", a plain-text body, and a
// Message-ID derived from the notification id, the same on every retry.
func (e *Notifier) Message(n alert.Notification) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(e.from); err != nil {
		return nil, fmt.Errorf("EMAIL_FROM: %w", err)
	}
	if err := m.To(e.to...); err != nil {
		return nil, fmt.Errorf("EMAIL_TO: %w", err)
	}
	m.Subject(alert.Truncate(n.Subject(), 200))
	m.SetMessageIDWithValue(messageID(n.ID))
	m.SetDateWithValue(n.Time)
	m.SetGenHeader("X-Alert-Id", n.ID)
	m.SetGenHeader("X-Alert-Dedup-Key", n.DedupKey)
	m.SetBodyString(gomail.TypeTextPlain, alert.Truncate(n.Text(), maxBody))
	return m, nil
}

// messageID makes a Message-ID local part from the notification id.
func messageID(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			b.WriteRune(r)
		}
	}
	return b.String() + "@callagent.alerts"
}

// Notify sends the email in one SMTP session (dial, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA).
func (e *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	m, err := e.Message(n)
	if err != nil {
		return false, err
	}
	if err := e.client.DialAndSendWithContext(ctx, m); err != nil {
		return classify(err, e.secret)
	}
	return false, nil
}

// classify turns an SMTP failure into a *fault.ServiceError and the retry decision:
//
//	no answer (dial, timeout, reset)             network/timeout   retry
//	4xx reply                                    unavailable       retry
//	530, 534, 535 (authentication)               authentication    retry later (fix the password)
//	STARTTLS missing, certificate not trusted    configuration     retry later (fix the server)
//	550–553 at MAIL FROM / RCPT TO               configuration     retry later (fix the addresses)
//	other 5xx (the message itself is refused)    invalid_payload   dropped
func classify(err error, secret string) (bool, error) {
	if errors.Is(err, context.Canceled) {
		return false, err
	}
	msg := redact.Text(err.Error(), secret)
	var code int
	var tp *textproto.Error
	var se *gomail.SendError
	switch {
	case errors.As(err, &tp):
		code = tp.Code
	case errors.As(err, &se):
		code = se.ErrorCode()
	}
	mk := func(kind fault.Kind) error {
		return &fault.ServiceError{Provider: Name, Kind: kind, Status: code, Message: "email: " + msg, Err: unwrapSafe(err)}
	}
	lower := strings.ToLower(msg)
	switch {
	case code >= 400 && code < 500:
		return true, mk(fault.KindUnavailable)
	case code == 530 || code == 534 || code == 535 || strings.Contains(lower, "smtp auth failed"):
		return true, mk(fault.KindAuthentication)
	case strings.Contains(lower, "starttls") || strings.Contains(lower, "certificate") || strings.Contains(lower, "tls:"):
		return true, mk(fault.KindConfiguration)
	case code >= 550 && code <= 553 && se != nil && (se.Reason == gomail.ErrSMTPMailFrom || se.Reason == gomail.ErrSMTPRcptTo):
		return true, mk(fault.KindConfiguration)
	case code >= 500:
		return false, mk(fault.KindInvalidPayload)
	}
	if c := fault.Classify(fault.Facts{Provider: Name, Err: err}); fault.KindOf(c) != fault.KindUnknown {
		var cse *fault.ServiceError
		if errors.As(c, &cse) {
			cse.Message = "email: " + msg
		}
		return true, c
	}
	return true, mk(fault.KindUnavailable)
}

// unwrapSafe keeps the error chain for errors.Is/As unless its text could hold the password
// (AUTH errors may echo what was sent).
func unwrapSafe(err error) error {
	if strings.Contains(strings.ToLower(err.Error()), "auth") {
		return nil
	}
	return err
}
