package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/testwait"
)

// clusterConfigDir holds the config files of the 3-node cluster docker-compose.yml runs,
// relative to this package's directory (where go test runs it). The cluster harness starts
// its nodes from them, so a broken file fails the suite, not an operator's first start.
const clusterConfigDir = "../../deploy/nats"

// clusterNodeNames are the nodes of the cluster: the server_name of each, the compose service
// that runs it (and the host name its peers route to), and <name>.conf in clusterConfigDir.
var clusterNodeNames = []string{"nats-1", "nats-2", "nats-3"}

// What the config files say for a container, which the harness rewrites for loopback: the
// client, monitoring and cluster addresses, the route port and the store.
const (
	deployClientAddr  = "0.0.0.0:4222"
	deployHTTPAddr    = "0.0.0.0:8222"
	deployClusterAddr = "0.0.0.0:6222"
	deployRoutePort   = 6222
	deployStoreDir    = "/data"
)

// Patterns of the settings the harness rewrites: a whole line each, key then value (quoted or
// not, after ':', '=' or a blank, as the NATS config format allows).
var (
	clientListenRe  = settingRe("listen", deployClientAddr)
	httpListenRe    = settingRe("http", deployHTTPAddr)
	clusterListenRe = settingRe("listen", deployClusterAddr)
	storeDirRe      = settingRe("store_dir", deployStoreDir)
	routeRe         = regexp.MustCompile(`nats-route://([^\s,"'\]]+)`)
	syncAlwaysRe    = regexp.MustCompile(`(?m)^[ \t]*sync_interval[ \t]*(?:[:=][ \t]*|[ \t])["']?always["']?[ \t]*[,;]?[ \t]*$`)
	includeRe       = regexp.MustCompile(`(?m)^[ \t]*include[ \t]+["']?([^"'\s;]+)["']?[ \t]*;?[ \t]*$`)
)

func settingRe(key, value string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^([ \t]*)` + key + `[ \t]*(?:[:=][ \t]*|[ \t])["']?` + regexp.QuoteMeta(value) + `["']?[ \t]*[,;]?[ \t]*$`)
}

// Cluster is a JetStream cluster of nats-server processes on loopback, started from the
// config files of deploy/nats with their ports and store rewritten.
type Cluster struct {
	// Name is the cluster's name, as the nodes report it.
	Name  string
	Nodes []*ClusterNode

	t       testing.TB
	confDir string
	nc      *nats.Conn
	js      jetstream.JetStream
}

// ClusterNode is one node: a NATSServer (Kill, Start, its ports and store) with its name and
// cluster port.
type ClusterNode struct {
	*NATSServer
	Name        string
	ClusterPort int
	// Routes are the route URLs its config file names, rewritten to loopback.
	Routes []string
}

// clusterReady bounds a cluster's start, and a node's restart until it is current again.
const clusterReady = 90 * time.Second

// StartCluster starts the nodes of confDir (clusterNodeNames) with their stores under dir and
// their output in logDir, waits until each is healthy (it knows the meta leader and its
// streams are current), and checks that each runs what its file says: its name, the cluster,
// routes to the others, sync_interval: always. The test fails when a file cannot be rewritten
// or a node does not come up as configured.
func StartCluster(t testing.TB, bin, confDir, dir, logDir string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, confDir: confDir}
	type ports struct{ client, http, cluster int }
	all := map[string]ports{}
	for _, name := range clusterNodeNames {
		all[name] = ports{freePort(t), freePort(t), freePort(t)}
	}
	for _, name := range clusterNodeNames {
		p := all[name]
		nodeDir := filepath.Join(dir, name)
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		r := nodeRewrite{
			node: name, client: p.client, http: p.http, cluster: p.cluster,
			storeDir: filepath.Join(nodeDir, "jetstream"), routePorts: map[string]int{},
		}
		for other, op := range all {
			r.routePorts[other] = op.cluster
		}
		text, routes, err := renderNodeConf(confDir, r)
		if err != nil {
			t.Fatalf("cluster config %s: %v", filepath.Join(confDir, name+".conf"), err)
		}
		conf := filepath.Join(nodeDir, "nats.conf")
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, &ClusterNode{
			NATSServer: &NATSServer{Port: p.client, MonitorPort: p.http, StoreDir: r.storeDir,
				t: t, name: name, bin: bin, conf: conf, logDir: logDir, readyIn: clusterReady},
			Name: name, ClusterPort: p.cluster, Routes: routes,
		})
	}
	// A node is healthy only once a quorum runs: start all, then wait for each.
	for _, n := range c.Nodes {
		n.launch()
	}
	for _, n := range c.Nodes {
		n.awaitHealthy()
	}
	c.checkNodes()

	nc, err := nats.Connect(c.URLs(), nats.Name("chaos-cluster"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeRewrite is how one node's config is rewritten for loopback.
type nodeRewrite struct {
	node                  string
	client, http, cluster int
	storeDir              string
	routePorts            map[string]int // every node's cluster port, by name
}

// renderNodeConf reads <node>.conf from confDir with its includes inlined, and rewrites the
// client, monitoring and cluster addresses to 127.0.0.1 and r's ports, store_dir to
// r.storeDir, and each route to the node it names. Each address and store_dir must be
// there once, in the form of the deploy constants; the routes must name each other node
// once, by its name and the cluster port; nothing of the container addresses may be left.
// It returns the config and the rewritten route URLs.
func renderNodeConf(confDir string, r nodeRewrite) (string, []string, error) {
	text, err := readInlined(confDir, r.node+".conf", 0)
	if err != nil {
		return "", nil, err
	}
	// Full-line comments go: they may mention the addresses being rewritten.
	var kept []string
	for line := range strings.Lines(text) {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, "//") {
			continue
		}
		kept = append(kept, strings.TrimRight(line, "\n"))
	}
	text = strings.Join(kept, "\n") + "\n"

	for _, rw := range []struct {
		what string
		re   *regexp.Regexp
		to   string
	}{
		{"the client address (listen: " + deployClientAddr + ")", clientListenRe, fmt.Sprintf("listen: 127.0.0.1:%d", r.client)},
		{"the monitoring address (http: " + deployHTTPAddr + ")", httpListenRe, fmt.Sprintf("http: 127.0.0.1:%d", r.http)},
		{"the cluster address (cluster { listen: " + deployClusterAddr + " })", clusterListenRe, fmt.Sprintf("listen: 127.0.0.1:%d", r.cluster)},
		{"the JetStream store (store_dir: " + deployStoreDir + ")", storeDirRe, fmt.Sprintf("store_dir: %q", r.storeDir)},
	} {
		if n := len(rw.re.FindAllStringIndex(text, -1)); n != 1 {
			return "", nil, fmt.Errorf("%s is there %d times, want once", rw.what, n)
		}
		text = rw.re.ReplaceAllString(text, "${1}"+strings.ReplaceAll(rw.to, "$", "$$"))
	}

	// Not rewritten, but required: without it the suite would measure a server that fsyncs
	// every two minutes (see cluster.conf). The nodes' /varz confirm it at start.
	if n := len(syncAlwaysRe.FindAllStringIndex(text, -1)); n != 1 {
		return "", nil, fmt.Errorf("sync_interval: always is there %d times, want once", n)
	}

	var routes, named []string
	var bad []string
	text = routeRe.ReplaceAllStringFunc(text, func(m string) string {
		hostPort := strings.TrimPrefix(m, "nats-route://")
		host, port, ok := strings.Cut(hostPort, ":")
		p, err := strconv.Atoi(port)
		switch {
		case !ok || err != nil || p != deployRoutePort:
			bad = append(bad, fmt.Sprintf("route %s: want port %d", m, deployRoutePort))
		case host == r.node:
			bad = append(bad, fmt.Sprintf("route %s: a node routes to the others, not to itself", m))
		case r.routePorts[host] == 0:
			bad = append(bad, fmt.Sprintf("route %s: no node %q in the cluster (%s)", m, host, strings.Join(clusterNodeNames, ", ")))
		default:
			named = append(named, host)
			url := fmt.Sprintf("nats-route://127.0.0.1:%d", r.routePorts[host])
			routes = append(routes, url)
			return url
		}
		return m
	})
	if len(bad) > 0 {
		return "", nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	var want []string
	for _, n := range clusterNodeNames {
		if n != r.node {
			want = append(want, n)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, want) {
		return "", nil, fmt.Errorf("routes name %v, want each other node once: %v", named, want)
	}
	// Whatever still names a container address would make the node listen on every
	// interface or dial a host that does not resolve here.
	// A port is left only as a whole number: a free port such as 42227 starts with 4222.
	for _, left := range []string{"0.0.0.0", deployStoreDir, ":4222", ":6222", ":8222"} {
		if leftover(text, left) {
			return "", nil, fmt.Errorf("%q is left after the rewrite (an address or path the harness does not know):\n%s", left, text)
		}
	}
	for _, n := range clusterNodeNames {
		if strings.Contains(text, "//"+n) || strings.Contains(text, n+":") {
			return "", nil, fmt.Errorf("%q is still addressed by name after the rewrite:\n%s", n, text)
		}
	}
	return text, routes, nil
}

// readInlined reads name from dir with every include line replaced by the file it names
// (relative to dir, as nats-server resolves it from the including file).
func readInlined(dir, name string, depth int) (string, error) {
	if depth > 4 {
		return "", fmt.Errorf("includes nested deeper than 4 at %s", name)
	}
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("include %s: outside %s", name, dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	var inclErr error
	text := includeRe.ReplaceAllStringFunc(string(b), func(line string) string {
		inc := includeRe.FindStringSubmatch(line)[1]
		s, err := readInlined(dir, filepath.Clean(inc), depth+1)
		if err != nil && inclErr == nil {
			inclErr = fmt.Errorf("%s: %w", name, err)
		}
		return s
	})
	return text, inclErr
}

// nodeVarz is what the harness reads of a node's /varz.
type nodeVarz struct {
	ServerName string `json:"server_name"`
	Cluster    struct {
		Name string   `json:"name"`
		Port int      `json:"cluster_port"`
		URLs []string `json:"urls"`
	} `json:"cluster"`
	JetStream struct {
		Config *struct {
			StoreDir   string `json:"store_dir"`
			SyncAlways bool   `json:"sync_always"`
		} `json:"config"`
		Meta *struct {
			Leader string `json:"leader"`
			Size   int    `json:"cluster_size"`
		} `json:"meta"`
	} `json:"jetstream"`
}

// varz reads n's /varz.
func (n *ClusterNode) varz() (nodeVarz, error) {
	var v nodeVarz
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", n.MonitorPort))
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("/varz: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// checkNodes fails the test unless every node runs as its file says: its server_name, one
// cluster name for all, the routes to the other nodes, its store, sync_interval: always, and
// a meta leader in a JetStream cluster of all of them.
func (c *Cluster) checkNodes() {
	c.t.Helper()
	var leaders []string
	for _, n := range c.Nodes {
		v, err := n.varz()
		if err != nil {
			c.t.Fatalf("%s: %v", n.Name, err)
		}
		var problems []string
		if v.ServerName != n.Name {
			problems = append(problems, fmt.Sprintf("server_name %q, want %q", v.ServerName, n.Name))
		}
		if v.Cluster.Name == "" {
			problems = append(problems, "no cluster name")
		} else if c.Name == "" {
			c.Name = v.Cluster.Name
		} else if v.Cluster.Name != c.Name {
			problems = append(problems, fmt.Sprintf("cluster %q, the others %q", v.Cluster.Name, c.Name))
		}
		if v.Cluster.Port != n.ClusterPort {
			problems = append(problems, fmt.Sprintf("cluster port %d, want %d", v.Cluster.Port, n.ClusterPort))
		}
		urls := slices.Sorted(slices.Values(v.Cluster.URLs))
		want := slices.Sorted(slices.Values(n.Routes))
		var hostPorts []string
		for _, u := range want {
			hostPorts = append(hostPorts, strings.TrimPrefix(u, "nats-route://"))
		}
		if !slices.Equal(urls, hostPorts) {
			problems = append(problems, fmt.Sprintf("routes %v, want %v", urls, hostPorts))
		}
		switch cfg := v.JetStream.Config; {
		case cfg == nil:
			problems = append(problems, "JetStream is not enabled")
		case !cfg.SyncAlways:
			problems = append(problems, "JetStream does not fsync every write (want sync_interval: always)")
		case cfg.StoreDir != n.StoreDir && !strings.HasPrefix(cfg.StoreDir, n.StoreDir+string(filepath.Separator)):
			problems = append(problems, fmt.Sprintf("store %s, want %s", cfg.StoreDir, n.StoreDir))
		}
		switch m := v.JetStream.Meta; {
		case m == nil:
			problems = append(problems, "not in a JetStream cluster")
		case m.Size != len(c.Nodes):
			problems = append(problems, fmt.Sprintf("JetStream cluster of %d, want %d", m.Size, len(c.Nodes)))
		case m.Leader == "":
			problems = append(problems, "no JetStream meta leader")
		default:
			leaders = append(leaders, m.Leader)
		}
		if len(problems) > 0 {
			c.t.Fatalf("%s (from %s) does not run as configured: %s", n.Name,
				filepath.Join(c.confDir, n.Name+".conf"), strings.Join(problems, "; "))
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(leaders)))) != 1 {
		c.t.Logf("the nodes name different meta leaders (an election under way): %v", leaders)
	}
}

// URLs is the client URLs of every node, comma-separated, as NATS_URL takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Kill SIGKILLs node.
func (c *Cluster) Kill(node *ClusterNode) {
	c.t.Helper()
	node.Kill()
}

// Restart starts node again on its ports and store and waits until it is healthy: back in
// the cluster, its streams and consumers caught up.
func (c *Cluster) Restart(node *ClusterNode) {
	c.t.Helper()
	node.Start()
}

// StreamLeader returns the node leading stream, from the stream's info (Cluster.Leader); an
// error while it has none (an election) or the info cannot be read.
func (c *Cluster) StreamLeader(stream string) (*ClusterNode, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	n := c.Node(info.Cluster.Leader)
	if n == nil {
		return nil, fmt.Errorf("stream %s: leader %q is not a node of the cluster", stream, info.Cluster.Leader)
	}
	return n, nil
}

// LedBy names the streams (KV buckets' and object stores' included) and the workers'
// consumer that node leads; what cannot be read is left out.
func (c *Cluster) LedBy(node *ClusterNode) []string {
	var led []string
	infos, _ := c.Streams()
	for _, info := range infos {
		if info.Cluster != nil && info.Cluster.Leader == node.Name {
			led = append(led, info.Config.Name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if cons, err := c.js.Consumer(ctx, contactsStream, consumerName); err == nil {
		if cl := cons.CachedInfo().Cluster; cl != nil && cl.Leader == node.Name {
			led = append(led, "consumer "+consumerName)
		}
	}
	return led
}

// Streams returns the info of every stream (the KV buckets' and object stores' included).
func (c *Cluster) Streams() ([]*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*jetstream.StreamInfo
	l := c.js.ListStreams(ctx)
	for info := range l.Info() {
		out = append(out, info)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *jetstream.StreamInfo) int { return strings.Compare(a.Config.Name, b.Config.Name) })
	return out, nil
}

// leftover reports whether text holds s not followed by another digit.
func leftover(text, s string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		end := i + j + len(s)
		if end == len(text) || text[end] < '0' || text[end] > '9' {
			return true
		}
		i = end
	}
}

// NewClusterScenario is NewScenario on a cluster started from deploy/nats, with every stream
// and bucket replicated on all its nodes (STREAM_REPLICAS, for the workers and the publisher).
func NewClusterScenario(t *testing.T, name string, bins Binaries, workers int) *Scenario {
	t.Helper()
	s := newScenario(t, name, bins, workers, func(s *Scenario) {
		s.Cluster = StartCluster(t, bins.NATSServer, clusterConfigDir, s.Dir, s.LogDir)
		s.natsURL = s.Cluster.URLs()
	})
	replicas := "STREAM_REPLICAS=" + strconv.Itoa(len(s.Cluster.Nodes))
	s.Env = append(s.Env, replicas)
	s.publisherEnv = append(s.publisherEnv, replicas)
	return s
}

// KillNode SIGKILLs a node of the cluster and leaves it down (RestartNode brings it back).
// The calls in flight then, of every worker, may be paid again (see Ledger.AtNodeKill): any
// worker may be writing through the node's leaders, and a contact's delivery may lapse while
// its stream or consumer elects a new one.
func (s *Scenario) KillNode(n *ClusterNode) {
	s.T.Helper()
	kept := s.Ledger.keptRecently(s.kept)
	killedAt := time.Now()
	s.Cluster.Kill(n)
	for step, k := range s.Ledger.AtNodeKill(killedAt, kept) {
		s.natsIn[step] += k
	}
	s.natsKills++
}

// keptRecently returns the calls answered 2xx keptWindow or less before now whose result is
// kept (kept as for AtKill). Read before a node's kill, a kept result is on a quorum of the
// nodes, which the kill of one cannot take. The calls answered while it reads are read in a
// second pass (and a third), so that few are left unread at the kill: those count as in
// flight.
func (l *Ledger) keptRecently(kept func(step, contact string) bool) map[*Call]bool {
	out := map[*Call]bool{}
	read := map[*Call]bool{}
	for range 3 {
		now := time.Now()
		type job struct {
			c             *Call
			step, contact string
		}
		var jobs []job
		l.mu.Lock()
		for _, c := range l.calls {
			if !read[c] && !c.Probe && c.OK && c.Contact != "" && !c.End.IsZero() && now.Sub(c.End) <= keptWindow {
				read[c] = true
				jobs = append(jobs, job{c, c.Step, c.Contact})
			}
		}
		l.mu.Unlock()
		if len(jobs) == 0 {
			break
		}
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			sem = make(chan struct{}, 16) // reads at once
		)
		for _, j := range jobs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if kept(j.step, j.contact) {
					mu.Lock()
					out[j.c] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return out
}

// AtNodeKill is AtServerKill for the SIGKILL at killedAt of one node of a cluster, narrowed
// as AtKill narrows a worker's kill: a call was in flight when it was unanswered at the kill,
// or answered keptWindow or less before it with a result not in kept (see keptRecently), which
// was then still on its way into a checkpoint. Those calls, of every worker, are added to the
// allowances and counted by step.
func (l *Ledger) AtNodeKill(killedAt time.Time, kept map[*Call]bool) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	inFlight := map[string]int{}
	for _, c := range l.calls {
		if c.Probe || c.atSrvKill || c.lostAtKill || !c.Start.Before(killedAt) {
			continue
		}
		unanswered := c.End.IsZero() || c.End.After(killedAt)
		unkept := c.OK && killedAt.Sub(c.End) <= keptWindow && !kept[c]
		if !unanswered && !unkept {
			continue
		}
		c.atSrvKill = true
		inFlight[c.Step]++
		if c.Contact != "" {
			l.allow[c.Contact+"/"+c.Step]++
		}
	}
	return inFlight
}

// RestartNode restarts a killed node and waits until it has caught up.
func (s *Scenario) RestartNode(n *ClusterNode) {
	s.T.Helper()
	s.Cluster.Restart(n)
}

// AwaitStreamLeader waits up to d for stream to have a leader other than not (nil: any), and
// returns it.
func (s *Scenario) AwaitStreamLeader(stream string, not *ClusterNode, d time.Duration) *ClusterNode {
	s.T.Helper()
	var leader *ClusterNode
	testwait.Eventually(s.T, d, "a leader of "+stream, func() (bool, string) {
		n, err := s.Cluster.StreamLeader(stream)
		if err != nil {
			return false, err.Error()
		}
		leader = n
		return n != not, "led by " + n.Name
	})
	return leader
}
