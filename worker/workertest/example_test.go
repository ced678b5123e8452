package workertest_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/callagent/resilience/worker/workertest"
)

// A test runs the worker with its own LLM step, enqueues contacts and checks the outcome.
// Here the LLM has no quota left for one contact: the worker dead-letters it and completes
// the other.
func Example() {
	// In a test, t is the test's *testing.T; an Example has none, so it borrows one.
	t, cleanup := exampleT()
	defer cleanup()

	h := workertest.Start(t, workertest.Options{
		WriteScript: func(_ context.Context, c workertest.Contact) (string, error) {
			if c.ID == "c-2" {
				return "", workertest.ProviderError(workertest.LLM, 402)
			}
			return "Hello " + c.Name + ", this is your reminder.", nil
		},
	})
	h.Enqueue(
		workertest.Contact{ID: "c-1", Name: "Ada", Phone: "+14155550101"},
		workertest.Contact{ID: "c-2", Name: "Grace", Phone: "+14155550102"},
	)
	h.WaitIdle()

	fmt.Println("c-1 completed:", h.Completed("c-1"))
	fmt.Println("c-2 completed:", h.Completed("c-2"))
	for _, dl := range h.DeadLetters() {
		fmt.Println("dead letter:", dl.ContactID, dl.Reason)
	}
	// Output:
	// c-1 completed: true
	// c-2 completed: false
	// dead letter: c-2 quota_exceeded
}

// exampleTB is the little of testing.TB a Harness uses, for the Example.
type exampleTB struct {
	testing.TB // other methods are not called
	dir        string
	cleanups   []func()
}

func exampleT() (*exampleTB, func()) {
	dir, err := os.MkdirTemp("", "workertest-example")
	if err != nil {
		panic(err)
	}
	t := &exampleTB{dir: dir}
	return t, func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
		os.RemoveAll(dir)
	}
}

func (t *exampleTB) Helper()                   {}
func (t *exampleTB) TempDir() string           { return t.dir }
func (t *exampleTB) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleTB) Errorf(f string, a ...any) { fmt.Printf("error: "+f+"\n", a...) }
func (t *exampleTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
