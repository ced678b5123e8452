package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/fleet"
)

func (a *publisherApp) breakerCommand() *cobra.Command {
	var forDur time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "breaker open|close|auto <provider>",
		Short: "Force a provider's circuit breaker open or closed on every worker, or hand it back",
		Long: `breaker writes an operator's override into the fleet-wide breaker record of a provider.
Every worker applies it within one watch round trip:

  open   takes the provider out of service: no call, no health probe, contacts wait
  close  keeps it in service whatever fails (use with care: failures still retry and dead-letter)
  auto   hands the breaker back to the automatic rules (an open breaker then waits for a
         health probe to see the provider up)

--for sets an expiry, after which the workers return to auto by themselves. status shows
the override; the workers' breaker alerts fire as for any opening and closing.`,
		Example: `  # ElevenLabs announced maintenance: take it out for an hour
  publisher breaker open ElevenLabs --for 1h

  # Back to normal
  publisher breaker auto ElevenLabs`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, provider := args[0], args[1]
			switch mode {
			case "open", "close", "auto":
			default:
				return usageError("breaker %s: want open, close or auto", mode)
			}
			if forDur < 0 {
				return flagError(cmd, "for", "must not be negative")
			}
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				kv, err := fleet.EnsureBreakerBucket(ctx, js, fleet.BreakerBucketConfig(fleet.DefaultBreakerBucket, a.cfg.Topology.Replicas))
				if err != nil {
					return err
				}
				name, err := a.knownProvider(ctx, js, kv, provider)
				if err != nil {
					return err
				}
				rec, err := setOverride(ctx, kv, name, mode, forDur)
				if err != nil {
					return err
				}
				if asJSON {
					return a.printJSON(rec)
				}
				switch rec.Mode {
				case "":
					fmt.Fprintf(a.stdout, "%s: breaker back to automatic (fleet state %s)\n", name, rec.State)
				default:
					until := "until `publisher breaker auto " + name + "`"
					if !rec.Until.IsZero() {
						until = "until " + rec.Until.Local().Format(time.RFC3339)
					}
					fmt.Fprintf(a.stdout, "%s: breaker held %s on every worker %s\n", name, strings.ToUpper(rec.Mode), until)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&forDur, "for", 0, "return to auto after this long (e.g. 45m); default: until `breaker auto`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the provider's fleet breaker record")
	return cmd
}

// knownProvider matches provider (any case) against the providers the workers report or the
// bucket has a record of, and returns its display name.
func (a *publisherApp) knownProvider(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, provider string) (string, error) {
	var names []string
	if st, err := fleet.Read(ctx, js, a.cfg.Fleet.Bucket); err == nil {
		for _, p := range st.Providers {
			names = append(names, p.Provider)
		}
	} else if !errors.Is(err, fleet.ErrNoReports) {
		return "", err
	}
	recs, err := fleet.ListShared(ctx, kv)
	if err != nil {
		return "", fmt.Errorf("read the fleet breakers: %w", err)
	}
	for _, r := range recs {
		if !slices.Contains(names, r.Provider) {
			names = append(names, r.Provider)
		}
	}
	for _, n := range names {
		if fleet.ProviderKey(n) == fleet.ProviderKey(provider) {
			return n, nil
		}
	}
	if len(names) == 0 {
		return "", usageError("provider %q: no worker reports any provider yet (start a worker first)", provider)
	}
	slices.Sort(names)
	return "", usageError("provider %q is unknown; the workers report: %s", provider, strings.Join(names, ", "))
}

// setOverride writes the override (a compare-and-set loop against concurrent transitions).
func setOverride(ctx context.Context, kv jetstream.KeyValue, provider, mode string, forDur time.Duration) (fleet.SharedRecord, error) {
	for range 5 {
		rec, rev, err := fleet.ReadShared(ctx, kv, provider)
		if err != nil {
			return rec, err
		}
		rec.Provider, rec.By = provider, "publisher"
		if rec.State == "" {
			rec.State, rec.Since = fleet.SharedClosed, time.Now().UTC()
		}
		rec.Mode, rec.Until = "", time.Time{}
		switch mode {
		case "open":
			rec.Mode = fleet.SharedOpen
		case "close":
			rec.Mode = fleet.SharedClosed
		}
		if rec.Mode != "" && forDur > 0 {
			rec.Until = time.Now().Add(forDur).UTC()
		}
		if _, err := fleet.WriteShared(ctx, kv, rec, rev); err == nil {
			return rec, nil
		} else if !fleet.IsConflict(err) {
			return rec, fmt.Errorf("write the fleet breaker of %s: %w", provider, err)
		}
	}
	return fleet.SharedRecord{}, fmt.Errorf("write the fleet breaker of %s: it kept changing; try again", provider)
}
