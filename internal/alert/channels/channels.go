// Package channels builds the enabled alert channels from settings, so the worker wires all
// five with one call. Every channel is disabled by default.
package channels

import (
	"errors"
	"fmt"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/alert/webhook"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Settings are every channel's settings (internal/config fills them from its own).
type Settings struct {
	Email     Email
	Telegram  Telegram
	Webhook   Webhook
	Slack     Slack
	PagerDuty PagerDuty
	// Client is the outbound HTTP client the HTTP channels share (no redirects, capped
	// bodies); the caller closes its idle connections when the channels stop. Nil makes one
	// that is never closed: fine for a short-lived tool, not for the worker.
	Client *httpx.Client
}

// Email is the email channel: disabled by default, MinSeverity default info.
type Email struct {
	Enabled     bool
	MinSeverity alert.Severity
	email.Options
}

// Telegram is the Telegram channel: disabled by default, MinSeverity default info.
type Telegram struct {
	Enabled     bool
	MinSeverity alert.Severity
	BotToken    secret.Secret
	ChatID      string
	APIURL      string
}

// Webhook is the signed webhook channel: disabled by default, MinSeverity default info.
type Webhook struct {
	Enabled     bool
	MinSeverity alert.Severity
	URL         string
	Secret      secret.Secret
}

// Slack is the Slack channel: disabled by default, MinSeverity default info.
type Slack struct {
	Enabled     bool
	MinSeverity alert.Severity
	WebhookURL  secret.Secret
}

// PagerDuty is the PagerDuty channel: disabled by default, MinSeverity default critical
// (pages for outages, quota and credentials, not for single call failures).
type PagerDuty struct {
	Enabled     bool
	MinSeverity alert.Severity
	RoutingKey  secret.Secret
	URL         string
	Source      string
}

// Build returns the enabled channels, in the order email, Telegram, webhook, Slack,
// PagerDuty, and registers each channel's secrets with red (may be nil) so no log line or
// alert can carry them. It reports every misconfigured channel at once.
func Build(s Settings, red *redact.Redactor) ([]alert.Channel, error) {
	var (
		out  []alert.Channel
		errs []error
	)
	add := func(name string, min alert.Severity, def alert.Severity, n alert.Notifier, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s alerts: %w", name, err))
			return
		}
		if min == "" {
			min = def
		}
		if !min.Valid() {
			errs = append(errs, fmt.Errorf("%s alerts: unknown minimum severity %q (info, warning or critical)", name, min))
			return
		}
		out = append(out, alert.Channel{Name: name, Notifier: n, MinSeverity: min})
	}
	secret := func(v secret.Secret) {
		if red != nil {
			red.Add(v.Reveal())
		}
	}
	client := s.Client
	if client == nil && (s.Telegram.Enabled || s.Webhook.Enabled || s.Slack.Enabled || s.PagerDuty.Enabled) {
		c, err := httpx.New(httpx.Options{})
		if err != nil {
			return nil, fmt.Errorf("alert channels: %w", err)
		}
		client = c
	}

	if c := s.Email; c.Enabled {
		secret(c.Password)
		n, err := email.New(c.Options)
		add(email.Name, c.MinSeverity, alert.SeverityInfo, n, err)
	}
	if c := s.Telegram; c.Enabled {
		secret(c.BotToken)
		n, err := telegram.New(telegram.Options{BotToken: c.BotToken, ChatID: c.ChatID, APIURL: c.APIURL, Client: client})
		add(telegram.Name, c.MinSeverity, alert.SeverityInfo, n, err)
	}
	if c := s.Webhook; c.Enabled {
		secret(c.Secret)
		n, err := webhook.New(webhook.Options{URL: c.URL, Secret: c.Secret, Client: client})
		add(webhook.Name, c.MinSeverity, alert.SeverityInfo, n, err)
	}
	if c := s.Slack; c.Enabled {
		secret(c.WebhookURL)
		n, err := slack.New(slack.Options{WebhookURL: c.WebhookURL, Client: client})
		add(slack.Name, c.MinSeverity, alert.SeverityInfo, n, err)
	}
	if c := s.PagerDuty; c.Enabled {
		secret(c.RoutingKey)
		n, err := pagerduty.New(pagerduty.Options{RoutingKey: c.RoutingKey, URL: c.URL, Source: c.Source, Client: client})
		add(pagerduty.Name, c.MinSeverity, alert.SeverityCritical, n, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
