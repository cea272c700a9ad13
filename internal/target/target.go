// Package target assembles what a scan acts on from a validated config: the HTTP client, the
// identities with their token sources and hooks, the probes, and which checks run with what.
package target

import (
	"context"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// Target is everything a check needs.
type Target struct {
	Origins    []string
	Client     *client.Client
	Identities map[string]*identity.Identity
	Probes     map[string]*probe.Probe
	Vars       probe.Vars // the config's vars
	// Checks maps check ID to what it runs with; CheckOrder lists them in config order.
	Checks     map[string]Plan
	CheckOrder []string
	MaxWindow  time.Duration
	Redactor   *redact.Redactor
}

// Plan is one check's configuration.
type Plan struct {
	Identity string   // the identity under test
	Verifier string   // a second, still-valid identity, when the check needs one
	Probes   []string // probe names
}

// Build turns a validated config into a Target. Every secret in the config is registered with r.
func Build(ctx context.Context, cfg *config.Config, r *redact.Redactor) (*Target, error) {
	panic("unimplemented")
}
