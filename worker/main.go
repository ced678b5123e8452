// Command worker is the call-campaign daemon: it consumes contacts from NATS JetStream and
// runs each through the LLM and text-to-speech with retries and circuit breakers.
package main

import (
	"os"

	"github.com/callagent/resilience/internal/cli"
)

func main() {
	os.Exit(cli.Execute(cli.NewWorkerCommand(os.LookupEnv, os.Stdout), os.Args[1:], os.Stderr))
}
