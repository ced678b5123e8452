package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// TestClusterLeaderKill runs 3 workers on a 3-node JetStream cluster started from the config
// files of deploy/nats, every stream and bucket replicated on the three nodes
// (STREAM_REPLICAS=3). Mid-run it SIGKILLs the node leading the contacts stream; the fleet
// carries on with two nodes (new leaders, workers reconnected to the others); while the node
// is down a worker is SIGKILLed (and restarted); later the node is restarted on its store and
// must catch up. Nothing may be lost or completed twice, and nothing paid again beyond the
// calls in flight at the kills; at the end every stream has its three replicas current. CHAOS=full does two rounds (the second kills whichever node leads
// then) on 2,000 contacts.
func TestClusterLeaderKill(t *testing.T) {
	n, rounds := pick(300, 2000), pick(1, 2)
	s := NewClusterScenario(t, "cluster-leader-kill", binaries(t), 3)
	keepCallsInFlight(s)
	s.StartWorkers()
	checkReplicated(t, s.Cluster)
	start := time.Now()
	s.Enqueue(s.NewContacts(n))

	// Each round, at even steps of the contacts the CRM has seen: the leader's kill, a
	// worker's kill (while the cluster runs on two nodes), the leader's restart.
	steps := 3*rounds + 1
	at := func(k int) int { return n * k / steps }
	for i := range rounds {
		s.awaitCalled(at(3*i + 1))
		leader := s.AwaitStreamLeader(contactsStream, nil, 30*time.Second)
		led := s.Cluster.LedBy(leader)
		called, killed := s.called(), time.Now()
		s.KillNode(leader)
		next := s.AwaitStreamLeader(contactsStream, leader, time.Minute)
		s.Note("Round %d: SIGKILLed %s, the leader of %s, with %d of %d contacts called; %s led it %s later. %s led: %s.",
			i+1, leader.Name, contactsStream, called, n, next.Name, time.Since(killed).Round(10*time.Millisecond),
			leader.Name, strings.Join(led, ", "))

		s.awaitCalled(at(3*i + 2))
		w := s.Workers[rand.N(len(s.Workers))]
		called = s.called()
		s.KillWorker(w)
		s.Note("Round %d: SIGKILLed worker %s (restarted) with %d contacts called.", i+1, w.ID, called)

		s.awaitCalled(at(3*i + 3))
		called, restart := s.called(), time.Now()
		s.RestartNode(leader)
		s.Note("Round %d: restarted %s after %s down, with %d contacts called; healthy (caught up) %s later.",
			i+1, leader.Name, restart.Sub(killed).Round(100*time.Millisecond), called, time.Since(restart).Round(100*time.Millisecond))
	}
	s.FaultEnded(time.Now())
	s.WaitDrained(pick(90*time.Second, 5*time.Minute))
	s.Note("%d contacts on R3 in %s from enqueue to drained.", n, time.Since(start).Round(100*time.Millisecond))
	s.Finish()
	checkHealed(t, s.Cluster)
}

// called counts the contacts the CRM recorded: progress, read without a request to the
// cluster.
func (s *Scenario) called() int { return len(s.CRM.Recorded()) }

// awaitCalled waits until the CRM has recorded k contacts.
func (s *Scenario) awaitCalled(k int) {
	s.T.Helper()
	testwait.Eventually(s.T, 2*time.Minute, fmt.Sprintf("%d contacts called", k), func() (bool, string) {
		c := s.called()
		return c >= k, fmt.Sprintf("%d called", c)
	})
}

// checkReplicated fails the test unless every stream (the KV buckets' and object stores'
// included) and the workers' consumer keep a replica on each node of c.
func checkReplicated(t *testing.T, c *Cluster) {
	t.Helper()
	infos, err := c.Streams()
	if err != nil {
		t.Fatalf("list the streams: %v", err)
	}
	want := len(c.Nodes)
	names := map[string]bool{}
	for _, info := range infos {
		names[info.Config.Name] = true
		if info.Config.Replicas != want {
			t.Errorf("stream %s has %d replicas, want %d (STREAM_REPLICAS)", info.Config.Name, info.Config.Replicas, want)
		}
	}
	for _, name := range []string{contactsStream, deadLetterStream, alertsStream, "KV_" + checkpointBucket,
		"KV_" + incidentsBucket, "OBJ_" + audioBucket} {
		if !names[name] {
			t.Errorf("no stream %s after the workers started; streams: %v", name, slices.Sorted(maps.Keys(names)))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, contactsStream, consumerName)
	if err != nil {
		t.Fatalf("consumer %s: %v", consumerName, err)
	}
	if r := cons.CachedInfo().Config.Replicas; r != want {
		t.Errorf("consumer %s has %d replicas, want %d", consumerName, r, want)
	}
}

// checkHealed waits until every stream has all its replicas back and current: the restarted
// node caught up.
func checkHealed(t *testing.T, c *Cluster) {
	t.Helper()
	var detail string
	healed := testwait.Until(time.Minute, 250*time.Millisecond, func() bool {
		infos, err := c.Streams()
		if err != nil {
			detail = err.Error()
			return false
		}
		var behind []string
		for _, info := range infos {
			if info.Cluster == nil || info.Cluster.Leader == "" {
				behind = append(behind, info.Config.Name+" (no leader)")
				continue
			}
			if len(info.Cluster.Replicas) != len(c.Nodes)-1 {
				behind = append(behind, fmt.Sprintf("%s (%d followers)", info.Config.Name, len(info.Cluster.Replicas)))
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					behind = append(behind, fmt.Sprintf("%s (%s behind)", info.Config.Name, p.Name))
				}
			}
		}
		detail = strings.Join(behind, ", ")
		return len(behind) == 0
	})
	if !healed {
		t.Errorf("the cluster did not heal: %s", detail)
	}
}

// TestClusterConfigFiles renders each node's config of deploy/nats as the cluster harness
// does, and checks that a broken file is refused: a route to a node that does not exist, a
// node left without a route, a missing sync_interval, an address in another form.
func TestClusterConfigFiles(t *testing.T) {
	r := func(node string) nodeRewrite {
		return nodeRewrite{node: node, client: 14222, http: 18222, cluster: 16222, storeDir: "/tmp/js-" + node,
			routePorts: map[string]int{"nats-1": 16221, "nats-2": 16222, "nats-3": 16223}}
	}
	for _, node := range clusterNodeNames {
		text, routes, err := renderNodeConf(clusterConfigDir, r(node))
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		for _, want := range []string{"listen: 127.0.0.1:14222", "http: 127.0.0.1:18222", "listen: 127.0.0.1:16222",
			`store_dir: "/tmp/js-` + node + `"`, "server_name: " + node} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: %q missing from\n%s", node, want, text)
			}
		}
		if len(routes) != 2 {
			t.Errorf("%s: routes %v", node, routes)
		}
	}

	broken := map[string]struct {
		file, old, new, want string
	}{
		"route to a stranger":  {"nats-1.conf", "nats-route://nats-3:6222", "nats-route://nats-4:6222", `no node "nats-4"`},
		"route missing":        {"nats-1.conf", "nats-route://nats-3:6222", "nats-route://nats-2:6222", "each other node once"},
		"route to itself":      {"nats-2.conf", "nats-route://nats-1:6222", "nats-route://nats-2:6222", "not to itself"},
		"route port":           {"nats-3.conf", "nats-route://nats-1:6222", "nats-route://nats-1:7222", "want port 6222"},
		"no sync_interval":     {"cluster.conf", "sync_interval: always", "", "sync_interval: always is there 0 times"},
		"sync_interval 2m":     {"cluster.conf", "sync_interval: always", "sync_interval: 2m", "sync_interval: always is there 0 times"},
		"client port form":     {"cluster.conf", "listen: 0.0.0.0:4222", "port: 4222", "client address"},
		"cluster listen moved": {"nats-1.conf", "listen: 0.0.0.0:6222", "listen: 0.0.0.0:6333", "cluster address"},
		"store elsewhere":      {"cluster.conf", "store_dir: /data", "store_dir: /var/nats", "JetStream store"},
		"no include":           {"nats-1.conf", "include ./cluster.conf", "", "client address"},
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(clusterConfigDir)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, b.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The setting, not a comment that mentions it.
			lines := strings.Split(string(data), "\n")
			i := slices.IndexFunc(lines, func(l string) bool {
				return !strings.HasPrefix(strings.TrimSpace(l), "#") && strings.Contains(l, b.old)
			})
			if i < 0 {
				t.Fatalf("%s no longer has %q: update the case", b.file, b.old)
			}
			lines[i] = strings.Replace(lines[i], b.old, b.new, 1)
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			node := strings.TrimSuffix(b.file, ".conf")
			if b.file == "cluster.conf" {
				node = "nats-1"
			}
			_, _, err = renderNodeConf(dir, r(node))
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Errorf("err = %v, want one saying %q", err, b.want)
			}
		})
	}
}

// A free port that starts with a container port (42227 and :4222) is not a leftover.
func TestLeftoverPortIsAWholeNumber(t *testing.T) {
	for text, want := range map[string]bool{
		"http: 127.0.0.1:42227\n": false, "listen: 0.0.0.0:4222\n": true, "a:42227 b:4222": true, "x :4222": true,
	} {
		if got := leftover(text, ":4222"); got != want {
			t.Errorf("leftover(%q) = %v, want %v", text, got, want)
		}
	}
}
