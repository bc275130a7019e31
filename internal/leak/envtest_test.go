package leak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/leak"
	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// The operator, built as `apikey-operator all` builds it with the leak
// endpoint on, against a real kube-apiserver; a local key pair stands in
// for GitHub's, served in GitHub's key document shape.
type suite struct {
	t        *testing.T
	k8s      client.Client
	reporter *leak.Reporter
	leakURL  string
	verify   string
	registry *prometheus.Registry
	logs     *testkit.SyncBuffer
	tokens   testkit.Tokens
}

func start(t *testing.T) *suite {
	bin := testkit.ControlPlane(t)
	s := &suite{t: t, reporter: leak.NewReporter(t), registry: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}}
	ctrl.SetLogger(zap.New(zap.WriteTo(s.logs), zap.Level(zapcore.Level(-127))))
	env, err := devenv.Start(devenv.Options{BinDir: bin, ConfigDir: filepath.Join("..", "..", "config"), Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	if s.k8s, err = client.New(env.Config, client.Options{Scheme: devenv.Scheme()}); err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = devenv.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	o := env.OperatorOptions(ports[0], ports[1])
	o.Leak.BindAddress = fmt.Sprintf("127.0.0.1:%d", ports[2])
	o.Leak.GitHubKeysURL = s.reporter.Server.URL
	o.Hooks.Registerer = s.registry
	if err := o.Validate(operator.AllInOne); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	op, err := operator.Build(ctx, env.Config, o, operator.AllInOne)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = op.Start(ctx) }()
	s.leakURL = "http://" + o.Leak.BindAddress + leak.GitHubPath
	s.verify = "http://" + o.Verify.BindAddress
	s.eventually("the leak endpoint listens", func() bool {
		resp, err := http.Get(s.leakURL)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return s
}

func (s *suite) eventually(what string, ok func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *suite) namespace(reaction string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "leak-"}}
	if reaction != "" {
		ns.Annotations = map[string]string{keysv1.LeakReactionAnnotation: reaction}
	}
	if err := s.k8s.Create(context.Background(), ns); err != nil {
		s.t.Fatal(err)
	}
	return ns.Name
}

func (s *suite) key(ns, name string, mutate ...func(*keysv1.ApiKey)) *keysv1.ApiKey {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(k)
	}
	if err := s.k8s.Create(context.Background(), k); err != nil {
		s.t.Fatal(err)
	}
	s.eventually(ns+"/"+name+" Ready", func() bool {
		return s.get(ns, name).Status.Hash != "" && readyReason(s.get(ns, name)) == keysv1.ReasonIssued
	})
	return s.get(ns, name)
}

func (s *suite) get(ns, name string) *keysv1.ApiKey {
	k := &keysv1.ApiKey{}
	if err := s.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		s.t.Fatal(err)
	}
	return k
}

func (s *suite) secretToken(ns, name string) string {
	sec := &corev1.Secret{}
	if err := s.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sec); err != nil {
		s.t.Fatal(err)
	}
	tok := string(sec.Data[keysv1.SecretKeyField])
	s.tokens.Remember(tok)
	return tok
}

func readyReason(k *keysv1.ApiKey) string {
	if c := meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func (s *suite) verifies(ns, tok string) int {
	req, _ := http.NewRequest(http.MethodGet, s.verify+"/v1/auth?namespace="+ns, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *suite) post(body []byte, headers map[string]string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodPost, s.leakURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func TestLeakReportsOnARealControlPlane(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	disableNS, reportNS, rotateNS := s.namespace(""), s.namespace("report"), s.namespace("rotate")

	s.key(disableNS, "victim")
	victim := s.secretToken(disableNS, "victim")
	s.key(disableNS, "bystander")
	bystander := s.secretToken(disableNS, "bystander")
	declared, _ := token.Mint("ak")
	s.tokens.Remember(declared)
	s.key(disableNS, "declared", func(k *keysv1.ApiKey) { k.Spec.TokenHash = keysv1.TokenHash(token.Hash(declared)) })
	s.key(reportNS, "watched")
	watched := s.secretToken(reportNS, "watched")
	s.key(rotateNS, "rolled")
	rolled := s.secretToken(rotateNS, "rolled")
	// A key rotated with a grace period: its previous token leaks.
	s.key(disableNS, "graceful", func(k *keysv1.ApiKey) {
		k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}
	})
	retired := s.secretToken(disableNS, "graceful")
	graceful := s.get(disableNS, "graceful")
	graceful.Annotations = map[string]string{keysv1.RotateAnnotation: "1"}
	if err := s.k8s.Update(ctx, graceful); err != nil {
		t.Fatal(err)
	}
	s.eventually("graceful rotated", func() bool { return len(s.get(disableNS, "graceful").Status.PreviousHashes) == 1 })
	current := s.secretToken(disableNS, "graceful")
	s.eventually("both graceful tokens verify", func() bool {
		return s.verifies(disableNS, retired) == 200 && s.verifies(disableNS, current) == 200
	})
	unknown, _ := token.Mint("ak")
	s.tokens.Remember(unknown)

	body := leaktest.Report(victim, declared, watched, rolled, retired, unknown)

	// Every bad request is refused and changes nothing.
	other := leak.NewReporter(t)
	big := append(bytes.Repeat([]byte(" "), 2<<20), body...)
	// The tokens, but not in the shape of a report.
	notReport, _ := json.Marshal(map[string]any{"tokens": []string{victim, declared, watched, rolled, retired}})
	for name, c := range map[string]struct {
		body    []byte
		headers map[string]string
		status  int
	}{
		"unsigned":       {body, nil, 401},
		"badly signed":   {body, map[string]string{leak.GitHubKeyIDHeader: s.reporter.ID, leak.GitHubSignatureHeader: other.Sign(t, body)}, 401},
		"unknown key id": {body, map[string]string{leak.GitHubKeyIDHeader: other.ID, leak.GitHubSignatureHeader: other.Sign(t, body)}, 401},
		"oversized":      {big, map[string]string{leak.GitHubKeyIDHeader: s.reporter.ID, leak.GitHubSignatureHeader: s.reporter.Sign(t, big)}, 413},
		// Signed, so it passes the signature: refused by the parser.
		"signed, not a report": {notReport, map[string]string{leak.GitHubKeyIDHeader: s.reporter.ID, leak.GitHubSignatureHeader: s.reporter.Sign(t, notReport)}, 400},
	} {
		if got, answer := s.post(c.body, c.headers); got != c.status {
			t.Errorf("%s: %d (%s), want %d", name, got, answer, c.status)
		}
	}
	if resp, err := http.Get(s.leakURL); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond) // would any write have happened, it would show by now
	for _, k := range []*keysv1.ApiKey{s.get(disableNS, "victim"), s.get(disableNS, "declared"), s.get(reportNS, "watched"), s.get(rotateNS, "rolled"), s.get(disableNS, "graceful")} {
		if !k.IsEnabled() || len(k.Status.Leaks) != 0 || readyReason(k) != keysv1.ReasonIssued {
			t.Fatalf("a refused request changed %s/%s: enabled %v, leaks %v, reason %s", k.Namespace, k.Name, k.IsEnabled(), k.Status.Leaks, readyReason(k))
		}
	}
	if s.verifies(disableNS, victim) != 200 {
		t.Fatal("the victim's token stopped verifying after refused requests")
	}

	// The signed report.
	status, answer := s.post(body, map[string]string{leak.GitHubKeyIDHeader: s.reporter.ID, leak.GitHubSignatureHeader: s.reporter.Sign(t, body)})
	if status != 200 {
		t.Fatalf("signed report: %d %s", status, answer)
	}
	var feedback []leak.Feedback
	if err := json.Unmarshal(answer, &feedback); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, f := range feedback {
		labels[f.TokenHash] = f.Label
	}
	for tok, want := range map[string]string{victim: "true_positive", declared: "true_positive", watched: "true_positive", rolled: "true_positive", retired: "true_positive", unknown: "false_positive"} {
		if got := labels[strings.TrimPrefix(token.Hash(tok), "sha256:")]; got != want {
			t.Errorf("label %q, want %q", got, want)
		}
	}

	// disable: the minted and the hash-only key are off, Ready=False Leaked, recorded.
	for _, name := range []string{"victim", "declared"} {
		s.eventually(name+" Leaked", func() bool { return readyReason(s.get(disableNS, name)) == keysv1.ReasonLeaked })
		k := s.get(disableNS, name)
		if k.IsEnabled() || len(k.Status.Leaks) != 1 {
			t.Fatalf("%s: enabled %v, leaks %+v", name, k.IsEnabled(), k.Status.Leaks)
		}
		l := k.Status.Leaks[0]
		if l.Hash != k.Status.Hash || l.Reporter != "github" || l.URL != "https://github.com/octo/repo/blob/abc/.env" || l.Source != "content" || l.Reaction != "disable" {
			t.Fatalf("%s: leak record %+v", name, l)
		}
		if c := meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady); !strings.Contains(c.Message, "rotate the key") {
			t.Fatalf("%s: message %q says not what to do", name, c.Message)
		}
	}
	s.eventually("the victim's token refused", func() bool { return s.verifies(disableNS, victim) == 401 })
	s.eventually("the declared token refused", func() bool { return s.verifies(disableNS, declared) == 401 })
	if k := s.get(disableNS, "bystander"); !k.IsEnabled() || len(k.Status.Leaks) != 0 || s.verifies(disableNS, bystander) != 200 {
		t.Fatal("the bystander was touched")
	}
	// report: recorded, still verifies.
	s.eventually("watched recorded", func() bool { return len(s.get(reportNS, "watched").Status.Leaks) == 1 })
	if k := s.get(reportNS, "watched"); !k.IsEnabled() || k.Status.Leaks[0].Reaction != "report" || s.verifies(reportNS, watched) != 200 {
		t.Fatalf("report-only namespace: enabled %v, leaks %+v", k.IsEnabled(), k.Status.Leaks)
	}
	// rotate: a new token, the leaked one refused at once (no grace).
	s.eventually("rolled rotated", func() bool { return s.get(rotateNS, "rolled").Status.Hash != token.Hash(rolled) })
	fresh := s.secretToken(rotateNS, "rolled")
	s.eventually("the rolled-out token refused", func() bool { return s.verifies(rotateNS, rolled) == 401 })
	if s.verifies(rotateNS, fresh) != 200 || readyReason(s.get(rotateNS, "rolled")) != keysv1.ReasonIssued {
		t.Fatal("the rotated key's new token does not verify")
	}

	// A previous token: its grace period ends, the key and its current token stay.
	s.eventually("the retired token refused", func() bool { return s.verifies(disableNS, retired) == 401 })
	if k := s.get(disableNS, "graceful"); !k.IsEnabled() || len(k.Status.PreviousHashes) != 0 || len(k.Status.Leaks) != 1 ||
		k.Status.Leaks[0].Reaction != "endGracePeriod" || s.verifies(disableNS, current) != 200 {
		t.Fatalf("graceful: enabled %v, previous %v, leaks %+v", k.IsEnabled(), k.Status.PreviousHashes, k.Status.Leaks)
	}

	// Event and metric.
	s.eventually("Leaked event", func() bool {
		list := &eventsv1.EventList{}
		_ = s.k8s.List(ctx, list, client.InNamespace(disableNS))
		for _, e := range list.Items {
			if e.Reason == keysv1.ReasonLeaked && e.Regarding.Name == "victim" && e.Type == corev1.EventTypeWarning {
				return true
			}
		}
		return false
	})
	metrics := gather(t, s.registry)
	if !strings.Contains(metrics, `apikey_leak_tokens_total{label="true_positive",reporter="github"} 5`) ||
		!strings.Contains(metrics, `apikey_leak_tokens_total{label="false_positive",reporter="github"} 1`) {
		t.Fatalf("metrics:\n%s", metrics)
	}

	// The same report again is refused and changes nothing: no second
	// rotation, no second record.
	rolledHash := s.get(rotateNS, "rolled").Status.Hash
	if got, _ := s.post(body, map[string]string{leak.GitHubKeyIDHeader: s.reporter.ID, leak.GitHubSignatureHeader: s.reporter.Sign(t, body)}); got != 409 {
		t.Fatalf("replay: %d, want 409", got)
	}
	time.Sleep(500 * time.Millisecond)
	if k := s.get(rotateNS, "rolled"); k.Status.Hash != rolledHash || len(k.Status.Leaks) != 1 || s.verifies(rotateNS, fresh) != 200 {
		t.Fatalf("the replay changed the rotated key: hash %s → %s, leaks %+v", rolledHash, k.Status.Hash, k.Status.Leaks)
	}
	if k := s.get(disableNS, "victim"); len(k.Status.Leaks) != 1 {
		t.Fatalf("the replay recorded again: %+v", k.Status.Leaks)
	}

	// No plaintext anywhere: logs, events, every key (status), metrics.
	events := &eventsv1.EventList{}
	keys := &keysv1.ApiKeyList{}
	if err := s.k8s.List(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.k8s.List(ctx, keys); err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(map[string]any{"events": events.Items, "keys": keys.Items})
	if leaks := testkit.Leaks(s.tokens.All(), map[string]string{"the logs": s.logs.String(), "events and keys": string(dump), "the metrics": gather(t, s.registry)}); len(leaks) > 0 {
		t.Fatalf("plaintext found: %v", leaks)
	}
	if !strings.Contains(s.logs.String(), "leaked token reported") {
		t.Fatal("the logs do not show the reports: the leak check proves nothing")
	}
}

func gather(t *testing.T, reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		_, _ = expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}
