package daemon

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"
)

// service is one piece of the worker's background work (a health checker, the
// MAX_DELIVERIES sweeper, the alert dispatcher, the fleet reporter, the metrics endpoint, the
// Sheets error log). Every one has the same shape: run works until its context ends and then
// returns; an error means it stopped for another reason.
type service struct {
	// name starts the line logged when run returns an error: "<name> stopped: <error>".
	name string
	// level is that line's level.
	level logrus.Level
	run   func(ctx context.Context) error
}

// startServices runs each service in a goroutine of its own and returns the func that stops
// them: it cancels their context and waits until every one has returned. The services'
// context keeps parent's values but not its cancellation: they live until stop, however
// parent ends.
func startServices(parent context.Context, log *logrus.Logger, list ...service) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var running sync.WaitGroup
	for _, s := range list {
		running.Go(func() {
			if err := s.run(ctx); err != nil {
				log.Logf(s.level, "%s stopped: %v", s.name, err)
			}
		})
	}
	return sync.OnceFunc(func() {
		cancel()
		running.Wait()
	})
}
