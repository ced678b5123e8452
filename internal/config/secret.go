package config

import "github.com/callagent/resilience/internal/secret"

// Secret is secret.Secret, kept as an alias so that code written against config.Secret
// still compiles; new code imports internal/secret.
type Secret = secret.Secret
