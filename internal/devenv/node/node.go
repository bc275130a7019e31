// Package node runs a real one-node Kubernetes cluster on this machine for
// the e2e suite (`make e2e`): etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd, kubelet and kube-proxy from bin/, with runc
// and the CNI bridge from Debian. Every fact and quirk it encodes is in
// docs/e2e.md ("What it takes to run a node here").
//
// Start must run inside the network namespace and the private mount
// namespace that hack/e2e.sh creates: it listens on fixed ports, programs
// iptables and mounts tmpfs over its root and /run, which is only safe
// there. It refuses to start elsewhere.
package node

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

// The node's fixed addresses: they exist only inside the e2e's network
// namespace, so nothing here can collide with the machine or reach out.
const (
	NodeName = "e2e-node"
	// NodeIP sits on an interface of its own (node0): kubelet refuses a loopback node IP
	// and kube-apiserver a loopback advertise address.
	NodeIP      = "10.99.0.1"
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/16"
	// KubernetesServiceIP is the first address of ServiceCIDR.
	KubernetesServiceIP = "10.96.0.1"
	apiPort             = 6443
	etcdPort            = 2379
)

// IsolationEnv is set by hack/e2e.sh once it has entered the e2e's own
// network and mount namespaces; Start refuses to run without it.
const IsolationEnv = "APIKEY_E2E_ISOLATED"

// Config says where the node finds its binaries and keeps its state.
type Config struct {
	// Bin holds the binaries (make e2e builds them there).
	Bin string
	// Root holds all state: a tmpfs that hack/e2e.sh mounts, gone with
	// the mount namespace.
	Root string
	// Logs receives one log file per component; it outlives the run.
	Logs string
	// CgroupRoot is the cgroup (v1, cgroupfs) under which kubelet puts
	// every pod; hack/e2e.sh creates it and removes it afterwards.
	CgroupRoot string
	// PauseImage is the sandbox image containerd is pinned to.
	PauseImage string
	// Progress receives a line per step.
	Progress io.Writer
}

// Node is a running node.
type Node struct {
	cfg   Config
	procs []component
	pki   string
	// Kubeconfig is an admin (system:masters) kubeconfig; Config the same
	// as a rest.Config.
	Kubeconfig string
	Config     *rest.Config
}

// Start brings the node up, each part only once the one before it answers,
// and returns when the node is Ready and kube-proxy has programmed the
// kubernetes Service. On error, what was started is stopped again.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if os.Getenv(IsolationEnv) != "1" {
		return nil, fmt.Errorf("the e2e node runs only inside the network and mount namespaces hack/e2e.sh creates (run `make e2e`)")
	}
	n = &Node{cfg: cfg, pki: filepath.Join(cfg.Root, "pki")}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"network: loopback, node0 with the node IP, forwarding", n.setupNetwork},
		{"certificates and kubeconfigs", n.writePKI},
		{"etcd", n.startEtcd},
		{"kube-apiserver", n.startAPIServer},
		{"kube-controller-manager and kube-scheduler", n.startControllers},
		{"containerd", n.startContainerd},
		{"kubelet", n.startKubelet},
		{"kube-proxy", n.startProxy},
	}
	for i, s := range steps {
		start := time.Now()
		n.progress("[node %d/%d] %s...", i+1, len(steps), s.what)
		if err := s.do(ctx); err != nil {
			return n, fmt.Errorf("%s: %w (component logs: %s)", s.what, err, cfg.Logs)
		}
		n.progress("[node %d/%d] %s: ready in %s", i+1, len(steps), s.what, time.Since(start).Round(100*time.Millisecond))
	}
	return n, nil
}

func (n *Node) progress(format string, args ...any) {
	if n.cfg.Progress != nil {
		fmt.Fprintf(n.cfg.Progress, format+"\n", args...)
	}
}

func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.cfg.Root}, parts...)...)
}

func (n *Node) bin(name string) string { return filepath.Join(n.cfg.Bin, name) }

// run runs a short command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Node) setupNetwork(ctx context.Context) error {
	cmds := [][]string{
		{"ip", "link", "set", "lo", "up"},
		// A bridge without ports: this kernel has no dummy interfaces.
		{"ip", "link", "add", "node0", "type", "bridge"},
		{"ip", "addr", "add", NodeIP + "/32", "dev", "node0"},
		{"ip", "link", "set", "node0", "up"},
		// A default route, so that kubelet finds a node address and
		// packets to Service IPs get routed before kube-proxy's DNAT.
		// It leads to a bridge without ports: nothing leaves the namespace.
		{"ip", "route", "add", "default", "dev", "node0"},
	}
	for _, c := range cmds {
		if err := run(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	// Per network namespace: the machine's own settings stay untouched.
	for file, value := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":                  "1",
		"/proc/sys/net/bridge/bridge-nf-call-iptables":   "1",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables":  "1",
		"/proc/sys/net/ipv4/conf/all/route_localnet":     "1",
		"/proc/sys/net/ipv4/conf/default/route_localnet": "1",
	} {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil && !strings.Contains(file, "bridge") {
			return fmt.Errorf("set %s: %w", file, err)
		}
	}
	return nil
}

// writePKI writes a cluster CA and one client certificate per component,
// the front-proxy pair for aggregation, and the ServiceAccount signing key.
func (n *Node) writePKI(ctx context.Context) error {
	if err := os.MkdirAll(n.pki, 0o700); err != nil {
		return err
	}
	ca, caKey, err := devenv.NewCA(n.pki, "ca")
	if err != nil {
		return err
	}
	_, _, err = devenv.IssueCert(n.pki, "apiserver", ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", NodeName},
		IPAddresses: []net.IP{net.ParseIP(KubernetesServiceIP), net.ParseIP(NodeIP), net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	clients := map[string]pkix.Name{
		"admin":                   {CommonName: "e2e-admin", Organization: []string{"system:masters"}},
		"apiserver-kubelet":       {CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		"kubelet":                 {CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}},
		"kube-controller-manager": {CommonName: "system:kube-controller-manager"},
		"kube-scheduler":          {CommonName: "system:kube-scheduler"},
		"kube-proxy":              {CommonName: "system:kube-proxy"},
	}
	for name, subject := range clients {
		if _, _, err := devenv.IssueCert(n.pki, name, ca, caKey, &x509.Certificate{Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return err
		}
		if name == "apiserver-kubelet" {
			continue
		}
		if err := n.writeKubeconfig(name); err != nil {
			return err
		}
	}
	proxyCA, proxyKey, err := devenv.NewCA(n.pki, "front-proxy-ca")
	if err != nil {
		return err
	}
	if _, _, err := devenv.IssueCert(n.pki, "front-proxy-client", proxyCA, proxyKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: devenv.FrontProxyClientName}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return err
	}
	// The ServiceAccount token signing key: any key pair from this CA's
	// tooling will do; the public half verifies.
	if _, _, err := devenv.IssueCert(n.pki, "sa", ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "service-accounts"}}); err != nil {
		return err
	}
	n.Kubeconfig = n.path("pki", "admin.kubeconfig")
	n.Config, err = clientcmd.BuildConfigFromFlags("", n.Kubeconfig)
	return err
}

func (n *Node) writeKubeconfig(name string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", apiPort), CertificateAuthority: filepath.Join(n.pki, "ca.crt")}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(n.pki, name+".crt"), ClientKey: filepath.Join(n.pki, name+".key")}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: name}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, filepath.Join(n.pki, name+".kubeconfig"))
}

func (n *Node) startEtcd(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	if err := n.start("etcd", "--data-dir="+n.path("etcd"), "--listen-client-urls="+url, "--advertise-client-urls="+url,
		"--listen-peer-urls=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, func() error { return httpOK(url + "/health") })
}

func (n *Node) startAPIServer(ctx context.Context) error {
	p := func(f string) string { return filepath.Join(n.pki, f) }
	if err := n.start("kube-apiserver",
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--bind-address=0.0.0.0",
		// Advertised for the kubernetes Service's endpoints; pods reach it
		// through their bridge's gateway.
		"--advertise-address="+NodeIP,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--client-ca-file="+p("ca.crt"),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--kubelet-client-certificate="+p("apiserver-kubelet.crt"), "--kubelet-client-key="+p("apiserver-kubelet.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p("sa.key"), "--service-account-signing-key-file="+p("sa.key"),
		"--api-audiences=https://kubernetes.default.svc",
		// Aggregation: the operator's APIService, as a cluster has it.
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"),
		"--requestheader-allowed-names="+devenv.FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
	); err != nil {
		return err
	}
	return poll(ctx, 120*time.Second, func() error { return n.kubectl(ctx, "get", "--raw", "/readyz") })
}

// kubectl runs bin/kubectl as the admin.
func (n *Node) kubectl(ctx context.Context, args ...string) error {
	return run(ctx, n.bin("kubectl"), append([]string{"--kubeconfig", n.Kubeconfig}, args...)...)
}

func (n *Node) startControllers(ctx context.Context) error {
	p := func(f string) string { return filepath.Join(n.pki, f) }
	kcm := p("kube-controller-manager.kubeconfig")
	if err := n.start("kube-controller-manager", "--kubeconfig="+kcm,
		"--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--leader-elect=false", "--use-service-account-credentials=true",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--controllers=*,-nodeipam", "--bind-address=127.0.0.1"); err != nil {
		return err
	}
	sched := p("kube-scheduler.kubeconfig")
	if err := n.start("kube-scheduler", "--kubeconfig="+sched,
		"--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--leader-elect=false", "--bind-address=127.0.0.1"); err != nil {
		return err
	}
	// Ready when the ServiceAccount controller has made `default` a
	// ServiceAccount: pods cannot be admitted before.
	return poll(ctx, 120*time.Second, func() error { return n.kubectl(ctx, "-n", "default", "get", "serviceaccount", "default") })
}

func (n *Node) startContainerd(ctx context.Context) error {
	dir := n.path("containerd")
	for _, d := range []string{"certs.d/_default", "cni/net.d", "cni/ipam"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// Every registry points at a dead loopback port: a missing image fails
	// at once instead of resolving a public name.
	if err := os.WriteFile(filepath.Join(dir, "certs.d/_default/hosts.toml"), []byte("server = \"http://127.0.0.1:9\"\n[host.\"http://127.0.0.1:9\"]\n  capabilities = [\"pull\", \"resolve\"]\n"), 0o644); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}`, filepath.Join(dir, "cni/ipam"), PodCIDR)
	if err := os.WriteFile(filepath.Join(dir, "cni/net.d/10-e2e.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: runc must not raise oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
        Root = %[5]q
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[6]q
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[7]q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.containerdSocket(), filepath.Join(dir, "containerd.sock.ttrpc"),
		filepath.Join(dir, "runc"), filepath.Join(dir, "cni/net.d"), n.cfg.PauseImage, filepath.Join(dir, "certs.d"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		return err
	}
	// The shims find containerd-shim-runc-v2 and runc on PATH.
	if err := n.startEnv("containerd", []string{"PATH=" + n.cfg.Bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		"--config", filepath.Join(dir, "config.toml"), "--log-level", "warn"); err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, func() error { return n.ctr(ctx, "version") })
}

func (n *Node) containerdSocket() string { return n.path("containerd", "containerd.sock") }

func (n *Node) ctr(ctx context.Context, args ...string) error {
	return run(ctx, n.bin("ctr"), append([]string{"--address", n.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
}

// Import loads image tarballs into containerd's Kubernetes namespace, where
// kubelet finds them without pulling.
func (n *Node) Import(ctx context.Context, tarballs ...string) error {
	for _, t := range tarballs {
		if err := n.ctr(ctx, "images", "import", t); err != nil {
			return fmt.Errorf("import %s: %w", t, err)
		}
	}
	return nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	dir := n.path("kubelet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// No cluster DNS: pods resolve nothing (nothing to reach outside).
	resolv := n.path("resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		return err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%s
# cgroup v1 on this machine: kubelet >= 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %q
failSwapOn: false
podCIDR: %q
resolvConf: %q
podLogsDir: %q
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
registerNode: true
`, filepath.Join(n.pki, "ca.crt"), n.containerdSocket(), n.cfg.CgroupRoot, PodCIDR, resolv, n.path("pod-logs"))
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		return err
	}
	if err := n.start("kubelet", "--config="+filepath.Join(dir, "config.yaml"),
		"--kubeconfig="+filepath.Join(n.pki, "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(dir, "root"), "--cert-dir="+filepath.Join(dir, "pki"),
		"--hostname-override="+NodeName, "--node-ip="+NodeIP); err != nil {
		return err
	}
	return poll(ctx, 180*time.Second, func() error {
		return n.kubectl(ctx, "wait", "--for=condition=Ready", "node/"+NodeName, "--timeout=5s")
	})
}

func (n *Node) startProxy(ctx context.Context) error {
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %q
hostnameOverride: %q
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the machine-wide conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, filepath.Join(n.pki, "kube-proxy.kubeconfig"), PodCIDR, NodeName)
	file := n.path("kube-proxy.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return err
	}
	if err := n.start("kube-proxy", "--config="+file); err != nil {
		return err
	}
	// Ready when the kubernetes Service answers through its ClusterIP.
	return poll(ctx, 90*time.Second, func() error {
		return run(ctx, n.bin("kubectl"), "--kubeconfig", n.Kubeconfig, "--server", fmt.Sprintf("https://%s:443", KubernetesServiceIP), "get", "--raw", "/readyz")
	})
}

// poll calls f until it succeeds or timeout passes; the last error says why.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func httpOK(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// component is one running part of the node.
type component struct {
	name string
	*proc.Process
}

func (n *Node) start(name string, args ...string) error { return n.startEnv(name, nil, args...) }

func (n *Node) startEnv(name string, env []string, args ...string) error {
	if err := os.MkdirAll(n.cfg.Logs, 0o755); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(n.cfg.Logs, name+".log"))
	if err != nil {
		return err
	}
	// Its own process group, and killed if this process dies first.
	p, err := proc.Start(n.bin(name), args, proc.Options{Out: log, Env: env, DieWithParent: true, OnExit: func() { log.Close() }})
	if err != nil {
		log.Close()
		return err
	}
	n.procs = append(n.procs, component{name: name, Process: p})
	return nil
}

// Exited names the components that are no longer running: a node part that
// died makes every later failure confusing, so the suite checks this.
func (n *Node) Exited() []string {
	var gone []string
	for _, p := range n.procs {
		if p.Exited() {
			gone = append(gone, fmt.Sprintf("%s (%s)", p.name, p.State()))
		}
	}
	return gone
}

// Stop stops kubelet first (so nothing restarts containers), kills every
// process of every pod through the node's cgroup, then stops the other
// components in reverse order: TERM, then KILL after a grace period
// (containerd may ignore TERM, kube-apiserver can take a minute).
// hack/e2e.sh cleans again behind it (processes, cgroups, the namespace).
func (n *Node) Stop() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		if n.procs[i].name == "kubelet" {
			_ = n.procs[i].Stop(10 * time.Second)
		}
	}
	if err := KillCgroup(n.cfg.CgroupRoot); err != nil {
		n.progress("stop: %v", err)
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		_ = n.procs[i].Stop(15 * time.Second)
	}
}

// KillCgroup SIGKILLs every process in the cgroup v1 tree named root under
// every hierarchy, until none is left (or 20 s pass).
func KillCgroup(root string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		left := 0
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hierarchies {
			_ = filepath.WalkDir(filepath.Join(h, root), func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(path)
				for _, f := range strings.Fields(string(b)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
						left++
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				return nil
			})
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("processes are still in cgroup " + root + " after 20s of SIGKILL")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
