// Command publisher enqueues contacts onto NATS JetStream and shows the queue's state.
package main

import (
	"os"

	"github.com/callagent/resilience/internal/cli"
)

func main() {
	os.Exit(cli.Execute(cli.NewPublisherCommand(os.LookupEnv, os.Stdout, os.Stderr), os.Args[1:], os.Stderr))
}
