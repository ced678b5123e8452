// Package email sends alert notifications by SMTP through github.com/wneessen/go-mail (Go's
// net/smtp is frozen), always inside TLS: either TLS from the first byte (SMTPS, port 465) or
// STARTTLS, which is then mandatory. A server that does not offer it, or whose certificate
// does not verify, gets nothing, and credentials never cross in clear text.
//
// Authentication takes the strongest mechanism the server offers inside TLS (go-mail's
// SMTPAuthAutoDiscover), so servers without AUTH PLAIN work: Office 365 offers only LOGIN
// (and XOAUTH2, which needs a token, not a password).
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
	"github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Name is the channel's display name.
const Name = "Email"

// Defaults for Options.
const (
	DefaultPort    = 587
	DefaultTimeout = 10 * time.Second
	// ImplicitTLSPort is the SMTPS port (RFC 8314): a session on it is TLS from the first
	// byte, and it is the port when ImplicitTLS is set without one.
	ImplicitTLSPort = 465
)

// maxBody bounds the mail body, in characters.
const maxBody = 20000

// Options configures a Notifier.
type Options struct {
	// Host is the SMTP server, e.g. smtp.gmail.com.
	Host string
	// Port (default 587, or 465 with ImplicitTLS) is its submission port. On 465
	// the session is TLS from the first byte (SMTPS); on any other port, unless ImplicitTLS
	// is set, it starts in clear text and must switch to TLS with STARTTLS.
	Port int
	// ImplicitTLS asks for TLS from the first byte on a port other than
	// 465, for a server that serves SMTPS elsewhere. Port 465 always uses implicit TLS,
	// whatever this says: a STARTTLS client there waits for a greeting that never comes.
	ImplicitTLS bool
	// Username (default From) and Password authenticate with
	// the strongest mechanism the server offers (SCRAM, CRAM-MD5, PLAIN, LOGIN), only ever
	// inside TLS. An empty Password sends without authenticating.
	Username string
	Password secret.Secret
	// From is the sender address.
	From string
	// To are the recipients.
	To []string
	// RootCAs verifies the server's certificate; nil uses the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the connection (default 10s); the context bounds the whole attempt.
	Timeout time.Duration
}

// Notifier sends each notification as one plain-text email. Safe for concurrent use.
type Notifier struct {
	client      *gomail.Client
	from        string
	to          []string
	host        string
	secret      string
	implicitTLS bool // TLS from the first byte; otherwise STARTTLS, mandatory
}

// WithDefaults returns o with every unset option at its default, and To without blanks.
func (o Options) WithDefaults() Options {
	if o.Port == 0 {
		o.Port = DefaultPort
		if o.ImplicitTLS {
			o.Port = ImplicitTLSPort
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Username == "" {
		o.Username = o.From
	}
	var to []string
	for _, a := range o.To {
		if a = strings.TrimSpace(a); a != "" {
			to = append(to, a)
		}
	}
	o.To = to
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error.
func (o Options) Validate() error {
	var l field.List
	l.Required("Host", o.Host, "is required")
	if o.Port < 1 || o.Port > 65535 {
		l.Addf("Port", "must be 1 to 65535, got %d", o.Port)
	}
	if _, err := mail.ParseAddress(o.From); err != nil {
		l.Addf("From", "%q is not an email address", o.From)
	}
	for _, a := range o.To {
		if _, err := mail.ParseAddress(a); err != nil {
			l.Addf("To", "%q is not an email address", a)
		}
	}
	if len(o.To) == 0 {
		l.Addf("To", "needs at least one address")
	}
	return l.Err()
}

// New returns a Notifier for o with its defaults, or Validate's error; it does not
// connect.
func New(o Options) (*Notifier, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	to := o.To
	implicit := o.ImplicitTLS || o.Port == ImplicitTLSPort
	opts := []gomail.Option{
		gomail.WithPort(o.Port),
		gomail.WithTLSPolicy(gomail.TLSMandatory),
		gomail.WithTLSConfig(&tls.Config{ServerName: o.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}),
		gomail.WithTimeout(o.Timeout),
	}
	if implicit {
		// WithSSL, not WithSSLPort: the latter may fall back to port 25 in clear text.
		opts = append(opts, gomail.WithSSL())
	}
	if o.Password != "" {
		// Auto-discovery only considers PLAIN and LOGIN once the session is in TLS, which
		// TLSMandatory or WithSSL guarantees before AUTH.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(o.Username), gomail.WithPassword(o.Password.Reveal()))
	}
	c, err := gomail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", o.Host, err)
	}
	return &Notifier{client: c, from: o.From, to: to, host: o.Host, secret: o.Password.Reveal(), implicitTLS: implicit}, nil
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

// Notify sends the email in one SMTP session: dial (and TLS handshake with implicit TLS),
// EHLO, STARTTLS (otherwise), AUTH, MAIL, RCPT, DATA.
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
//	no answer (dial, timeout, reset)                  network/timeout   retry
//	SMTP AUTH disabled or not offered (535 5.7.139
//	  "SmtpClientAuthentication is disabled for the
//	  Tenant", "does not support SMTP AUTH", "SMTP
//	  AUTH extension not supported", no mechanism
//	  we can use)                                     configuration     retry later (enable SMTP AUTH)
//	4xx reply                                         unavailable       retry
//	530, 534, 535 (bad credentials)                   authentication    retry later (fix the password)
//	other 5xx reply to AUTH (mechanism refused)       configuration     retry later (fix the server)
//	STARTTLS missing, TLS handshake failed (implicit
//	  TLS on a STARTTLS port), certificate untrusted  configuration     retry later (fix the server or port)
//	550–553 at MAIL FROM / RCPT TO                    configuration     retry later (fix the addresses)
//	other 5xx (the message itself is refused)         invalid_payload   dropped
//
// SMTP AUTH being disabled is told apart from a wrong password by the server's words, not
// its code: Office 365 answers 535 to both, and only the password is the operator's typo.
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
	// go-mail wraps every failure of the AUTH exchange in "SMTP AUTH failed: …".
	atAuth := strings.Contains(lower, "smtp auth failed")
	switch {
	case authUnavailable(err, lower):
		return true, mk(fault.KindConfiguration)
	case code >= 400 && code < 500:
		return true, mk(fault.KindUnavailable)
	case code == 530 || code == 534 || code == 535:
		return true, mk(fault.KindAuthentication)
	case atAuth && code >= 500:
		return true, mk(fault.KindConfiguration)
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
	if atAuth { // the exchange failed without a reply code or a transport error
		return true, mk(fault.KindAuthentication)
	}
	return true, mk(fault.KindUnavailable)
}

// authDisabledPhrases are what servers (and go-mail) say when SMTP AUTH is off or absent,
// lower case. The operator must enable it (Office 365: per mailbox or tenant, see
// https://aka.ms/smtp_auth_disabled); a new password will not help.
var authDisabledPhrases = []string{
	"smtpclientauthentication is disabled", // Office 365: 535 5.7.139 … for the Tenant / Mailbox
	"basic authentication is disabled",     // Office 365: 535 5.7.139
	"security defaults policy",             // Office 365: 535 5.7.139 … locked by … security defaults policy
	"does not support smtp auth",           // go-mail: no AUTH extension, or not the mechanism asked for
	"smtp auth extension not supported",    // relays without AUTH
}

// authUnavailable reports whether err says that the server offers no SMTP AUTH we can use.
func authUnavailable(err error, lower string) bool {
	if errors.Is(err, gomail.ErrNoSupportedAuthDiscovered) {
		return true
	}
	for _, p := range authDisabledPhrases {
		if strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// unwrapSafe keeps the error chain for errors.Is/As unless its text could hold the password
// (AUTH errors may echo what was sent).
func unwrapSafe(err error) error {
	if strings.Contains(strings.ToLower(err.Error()), "auth") {
		return nil
	}
	return err
}
