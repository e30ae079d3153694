package cachetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"userapi/internal/freeport"
)

// Cluster is a private Redis Cluster of three primaries, each with one
// replica, made of redis-server child processes on free ports.
type Cluster struct {
	Nodes []*Server
}

// clusterNodes is how many redis-server processes a Cluster runs: three
// primaries and a replica of each, the smallest cluster that fails over.
const clusterNodes = 6

// NewCluster starts a cluster and waits until it serves every slot. Its
// nodes are killed when the test ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c := startCluster(t, t.TempDir)
	t.Cleanup(c.Stop)
	return c
}

var shared struct {
	once    sync.Once
	cluster *Cluster
	failed  bool
	dir     string // the nodes' files, removed by StopSharedCluster
}

// SharedCluster is one cluster for all the tests of a package that only
// read and write keys (under their own Prefix), started by the first test
// that asks. StopSharedCluster, called from TestMain after the tests, kills
// it.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.failed = true // until startCluster returns
		// Its nodes' files outlive the test that starts it: a node that
		// cannot rewrite nodes.conf exits.
		dir, err := os.MkdirTemp("", "userapi-cluster-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.cluster = startCluster(t, func() string {
			d, err := os.MkdirTemp(dir, "node-")
			if err != nil {
				t.Fatal(err)
			}
			return d
		})
		shared.failed = false
	})
	if shared.failed {
		t.Fatal("cachetest: the shared Redis Cluster failed to start in an earlier test")
	}
	return shared.cluster
}

// StopSharedCluster kills the shared cluster, if a test started one.
func StopSharedCluster() {
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// startCluster starts the nodes, each with its files in a directory newDir
// makes.
func startCluster(t testing.TB, newDir func() string) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed (Debian: apt-get install redis-tools)")
	}
	c := &Cluster{}
	addrs := make([]string, 0, clusterNodes)
	for range clusterNodes {
		// The cluster bus gets a free port of its own: port+10000, Redis's
		// default, may be taken or past 65535.
		s := &Server{t: t, Port: freeport.Port(t), dir: newDir(), extra: []string{
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(freeport.Port(t)),
			"--cluster-config-file", "nodes.conf",
			// A dead primary is noticed within a second and its replica
			// promoted soon after; the production default is 15s.
			"--cluster-node-timeout", "1000",
			"--cluster-replica-validity-factor", "0",
		}}
		s.Start()
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		c.Stop()
		t.Fatalf("cachetest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		c.waitOK(t, n)
	}
	// A replica that has not finished its first sync would refuse to take
	// over from its primary.
	for _, n := range c.Nodes {
		c.waitFor(t, n, "INFO replication", func(info string) bool {
			return strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")
		})
	}
	return c
}

// URL names every node as a seed, so a client finds the cluster through
// whichever still answers.
func (c *Cluster) URL() string {
	q := url.Values{}
	for _, n := range c.Nodes[1:] {
		q.Add("addr", n.Addr())
	}
	return "redis://" + c.Nodes[0].Addr() + "/0?" + q.Encode()
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// PrimaryOf returns the node serving key's slot now.
func (c *Cluster) PrimaryOf(t testing.TB, key string) *Server {
	t.Helper()
	n := c.primaryOf(t, key)
	if n == nil {
		t.Fatalf("cachetest: no live primary serves the slot of %q", key)
	}
	return n
}

// WaitServed waits until a live primary serves key's slot and every live
// node says the cluster is ok: after a primary is killed, until its replica
// has taken over. It returns the new primary.
func (c *Cluster) WaitServed(t testing.TB, key string) *Server {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := c.primaryOf(t, key); n != nil {
			c.WaitOK(t)
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("cachetest: no replica took over the slot of %q within 30s", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) primaryOf(t testing.TB, key string) *Server {
	t.Helper()
	var live []*Server
	for _, n := range c.Nodes {
		if n.cmd != nil {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		t.Fatal("cachetest: every node of the cluster is down")
	}
	slot, err := strconv.Atoi(live[0].cli(t, "CLUSTER", "KEYSLOT", key))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range live {
		out := n.cli(t, "CLUSTER", "NODES")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 9 || !strings.Contains(f[2], "myself") || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			for _, r := range f[8:] {
				lo, hi, found := strings.Cut(r, "-")
				if !found {
					hi = lo
				}
				a, err1 := strconv.Atoi(lo)
				b, err2 := strconv.Atoi(hi)
				if err1 == nil && err2 == nil && slot >= a && slot <= b {
					return n
				}
			}
		}
	}
	return nil
}

// WaitReplicated waits until the replicas of primary n have acknowledged
// everything n had written when called: killing n then loses none of it.
func (c *Cluster) WaitReplicated(t testing.TB, n *Server) {
	t.Helper()
	var written int64
	c.waitFor(t, n, "INFO replication", func(info string) bool {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_repl_offset:"); ok {
				written, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return written > 0
	})
	// A replica acknowledges its offset once a second:
	// slave0:ip=...,port=...,state=online,offset=N,lag=0
	c.waitFor(t, n, "INFO replication", func(info string) bool {
		acked := false
		for _, line := range strings.Split(info, "\n") {
			if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "offset=") {
				continue
			}
			for _, f := range strings.Split(strings.TrimSpace(line), ",") {
				if v, ok := strings.CutPrefix(f, "offset="); ok {
					off, _ := strconv.ParseInt(v, 10, 64)
					if off < written {
						return false
					}
					acked = true
				}
			}
		}
		return acked
	})
}

// WaitOK waits until every live node reports cluster_state:ok.
func (c *Cluster) WaitOK(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes {
		if n.cmd != nil {
			c.waitOK(t, n)
		}
	}
}

func (c *Cluster) waitOK(t testing.TB, n *Server) {
	t.Helper()
	c.waitFor(t, n, "CLUSTER INFO", func(info string) bool { return strings.Contains(info, "cluster_state:ok") })
}

func (c *Cluster) waitFor(t testing.TB, n *Server, command string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := n.cli(t, strings.Fields(command)...)
		if ok(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cachetest: node %s: %s still says\n%s", n.Addr(), command, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs one command on this node alone (no redirection) and returns its
// answer as text.
func (s *Server) cli(t testing.TB, args ...string) string {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr()}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatalf("cachetest: node %s: %v", s.Addr(), err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := c.Do(ctx, c.B().Arbitrary(args...).Build()).ToAny()
	if err != nil {
		t.Fatalf("cachetest: node %s: %s: %v", s.Addr(), strings.Join(args, " "), err)
	}
	return fmt.Sprint(out)
}

// String names the cluster in test output.
func (c *Cluster) String() string { return fmt.Sprintf("Redis Cluster of %d nodes", len(c.Nodes)) }

// OnEachDeployment runs test, in parallel subtests, on each kind of Redis
// the service supports: the shared single server ("single") and the
// package's shared Redis Cluster ("cluster"), passing its URL.
func OnEachDeployment(t *testing.T, test func(t *testing.T, url string)) {
	t.Helper()
	deployments := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"single", func(*testing.T) string { return URL() }},
		{"cluster", func(t *testing.T) string { return SharedCluster(t).URL() }},
	}
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, d.url(t))
		})
	}
}
