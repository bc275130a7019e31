package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// These tests apply manifests to a real kube-apiserver with the generated
// CRDs: the rules live in the CRD schema, so only the API server can say
// whether they hold.

var (
	k8s client.Client
	env *devenv.Env
)

func TestValidation(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "CRD validation suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = devenv.Start(devenv.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "v"}})).To(Succeed())
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func key(name string, mutate func(*keysv1.ApiKey)) *keysv1.ApiKey {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "v", Name: name}}
	mutate(k)
	return k
}

func duration(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

var _ = DescribeTable("the API server rejects a bad ApiKey with a message that says what to fix",
	func(k *keysv1.ApiKey, want string) {
		err := k8s.Create(context.Background(), k)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(want))
	},
	Entry("a permission with spaces", key("perm", func(k *keysv1.ApiKey) {
		k.Spec.Permissions = []keysv1.Permission{"invoices read"}
	}), `spec.permissions[0]: Invalid value: "invoices read": must be segments of letters, digits, '-' or '_' (or a lone '*') joined by ':', '.', '/' or '@', with no spaces, for example invoices:read, tenant.apiKey:*, payments/read, billing@eu or *`),
	Entry("a permission with an empty segment", key("perm-empty", func(k *keysv1.ApiKey) {
		k.Spec.Permissions = []keysv1.Permission{"payments//read"}
	}), `spec.permissions[0]: Invalid value: "payments//read": must be segments`),
	Entry("a permission with a tab", key("perm-tab", func(k *keysv1.ApiKey) {
		k.Spec.Permissions = []keysv1.Permission{"payments/\tread"}
	}), `must be segments of letters`),
	Entry("a bad CIDR", key("cidr", func(k *keysv1.ApiKey) {
		k.Spec.AllowedIPs = []keysv1.IPOrCIDR{"10.0.0.0/33"}
	}), `spec.allowedIPs[0]: Invalid value: "10.0.0.0/33": must be an IP address (192.0.2.10, 2001:db8::1) or a CIDR block (10.0.0.0/8, 2001:db8::/32)`),
	Entry("a bad IP", key("ip", func(k *keysv1.ApiKey) {
		k.Spec.AllowedIPs = []keysv1.IPOrCIDR{"192.168.1.256"}
	}), `spec.allowedIPs[0]: Invalid value: "192.168.1.256": must be an IP address`),
	Entry("a name with a line break", key("newline", func(k *keysv1.ApiKey) {
		k.Spec.Name = "billing\nprod"
	}), `spec.name: Invalid value: "billing\nprod": must not contain control characters (line breaks, tabs, NUL, bidirectional-text controls); any other text of up to 128 characters is fine, for example CI Deploy (prod)`),
	Entry("a name with NUL", key("nul", func(k *keysv1.ApiKey) {
		k.Spec.Name = "billing\x00"
	}), `must not contain control characters`),
	Entry("a name with a C1 control", key("c1", func(k *keysv1.ApiKey) {
		k.Spec.Name = "billing\u0085prod"
	}), `must not contain control characters`),
	Entry("a name with a right-to-left override", key("bidi", func(k *keysv1.ApiKey) {
		k.Spec.Name = "invoice\u202Efdp.exe"
	}), `must not contain control characters`),
	Entry("a name of 129 characters", key("long-name", func(k *keysv1.ApiKey) {
		k.Spec.Name = keysv1.KeyName(strings.Repeat("é", 129))
	}), `spec.name: Too long: may not be more than 128`),
	Entry("10,000 IPs", key("many-ips", func(k *keysv1.ApiKey) {
		for i := range 10000 {
			k.Spec.AllowedIPs = append(k.Spec.AllowedIPs, keysv1.IPOrCIDR(fmt.Sprintf("10.%d.%d.1", i/256, i%256)))
		}
	}), `spec.allowedIPs: Too many: 10000: must have at most 100 items`),
	Entry("a grace period longer than the period", key("grace", func(k *keysv1.ApiKey) {
		k.Spec.Rotation = &keysv1.RotationSpec{Period: duration(time.Hour), GracePeriod: duration(2 * time.Hour)}
	}), `spec.rotation: Invalid value: gracePeriod must be shorter than period: the old token must stop working before the next rotation`),
	Entry("a rotation period under a second", key("fast", func(k *keysv1.ApiKey) {
		k.Spec.Rotation = &keysv1.RotationSpec{Period: duration(time.Millisecond)}
	}), `spec.rotation.period: Invalid value: "1ms": must be a duration of at least 1s such as 90s, 15m or 720h`),
	Entry("a Secret name with upper case", key("secret", func(k *keysv1.ApiKey) {
		k.Spec.SecretName = "My-Secret"
	}), `spec.secretName: Invalid value: "My-Secret": must be a valid Secret name`),
	Entry("a description over 1024 characters", key("desc", func(k *keysv1.ApiKey) {
		k.Spec.Description = strings.Repeat("x", 1025)
	}), `spec.description: Too long: may not be more than 1024 bytes`),
	Entry("65 permissions", key("perms", func(k *keysv1.ApiKey) {
		for i := range 65 {
			k.Spec.Permissions = append(k.Spec.Permissions, keysv1.Permission(fmt.Sprintf("p%d:read", i)))
		}
	}), `spec.permissions: Too many: 65: must have at most 64 items`),
	Entry("a metadata.name too long for a label value", key(strings.Repeat("k", 64), func(*keysv1.ApiKey) {}),
		`metadata.name must be at most 63 characters`),
	Entry("an audience with a space", key("aud", func(k *keysv1.ApiKey) {
		k.Spec.Audiences = []keysv1.Audience{"billing api"}
	}), `spec.audiences[0]: Invalid value: "billing api": must start with a letter or digit and hold only letters, digits, '.', '_', ':', '/' and '-' (for example billing or https://api.example.com/billing)`),
	Entry("an audience with a comma (gateways list audiences with commas)", key("aud-comma", func(k *keysv1.ApiKey) {
		k.Spec.Audiences = []keysv1.Audience{"billing,reports"}
	}), `spec.audiences[0]: Invalid value: "billing,reports": must start with a letter or digit`),
	Entry("17 audiences", key("auds", func(k *keysv1.ApiKey) {
		for i := range 17 {
			k.Spec.Audiences = append(k.Spec.Audiences, keysv1.Audience(fmt.Sprintf("api-%d", i)))
		}
	}), `spec.audiences: Too many: 17: must have at most 16 items`),
	Entry("a token hash in upper case", key("hash-upper", func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("A", 64))
	}), `spec.tokenHash: Invalid value: "sha256:AAAA`),
	Entry("a token hash without its algorithm", key("hash-bare", func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash(strings.Repeat("a", 71))
	}), `must be sha256: followed by 64 lower-case hex digits, as printed by 'apikey-operator hash'`),
	Entry("a token hash one digit short", key("hash-short", func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("a", 63))
	}), `spec.tokenHash: Invalid value: "sha256:`),
	Entry("a token hash with a Secret (both modes at once)", key("hash-secret", func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("a", 64))
		k.Spec.SecretName = "billing"
	}), `tokenHash and secretName exclude each other: a key with a declared tokenHash has no Secret; drop one of them`),
	Entry("a token hash with a rotation period", key("hash-period", func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("a", 64))
		k.Spec.Rotation = &keysv1.RotationSpec{Period: duration(time.Hour)}
	}), `a key with tokenHash rotates when you declare a new tokenHash, not on a schedule`),
	Entry("a rate limit of zero", key("rate", func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 0}
	}), `spec.rateLimit.requestsPerSecond: Invalid value: 0: spec.rateLimit.requestsPerSecond in body should be greater than or equal to 1`),
	Entry("a quota of zero", key("quota-zero", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 0}
	}), `spec.quota.limit: Invalid value: 0: spec.quota.limit in body should be greater than or equal to 1`),
	Entry("a quota over 10^12", key("quota-huge", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: keysv1.QuotaLimitMax + 1}
	}), `spec.quota.limit: Invalid value: 1000000000001`),
	Entry("a refill larger than the quota", key("quota-amount", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodDay, Amount: 11}}
	}), `spec.quota: Invalid value: refill.amount must be at most limit: a quota never holds more than its limit`),
	Entry("a refill with both an interval and a period", key("quota-both", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodDay, Interval: duration(time.Hour)}}
	}), `spec.quota.refill: Invalid value: set exactly one of interval (a duration counted from the object's creation, such as 24h) and period`),
	Entry("a refill with neither", key("quota-neither", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Amount: 1}}
	}), `set exactly one of interval`),
	Entry("a refill every second", key("quota-fast", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Interval: duration(time.Second)}}
	}), `spec.quota.refill.interval: Invalid value: "1s": must be a duration from 1m to 87600h, such as 1h, 24h or 720h (shorter refills are a rate limit: use rateLimit)`),
	Entry("a refill every eleven years", key("quota-slow", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Interval: duration(96360 * time.Hour)}}
	}), `must be a duration from 1m to 87600h`),
	Entry("a refill every fortnight as a period", key("quota-period", func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 10, Refill: &keysv1.QuotaRefill{Period: "Fortnight"}}
	}), `spec.quota.refill.period: Unsupported value: "Fortnight": supported values: "Hour", "Day", "Week", "Month"`),
)

var _ = Describe("valid manifests", func() {
	It("accepts free-text names and permissions with '/' and '@' (issue 13)", func() {
		ctx := context.Background()
		for i, name := range []string{"CI Deploy (prod)", "Déploiement", "build #42", "ops@example.com", "tenant:42", strings.Repeat("é", 128), "🧑\u200d💻 dev"} {
			k := key(fmt.Sprintf("free-%d", i), func(k *keysv1.ApiKey) {
				k.Spec.Name = keysv1.KeyName(name)
				k.Spec.Permissions = []keysv1.Permission{"payments/read", "billing@eu", "urn:acme:invoices/read", "payments/*", "*@eu"}
			})
			Expect(k8s.Create(ctx, k)).To(Succeed(), name)
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), k)).To(Succeed())
			Expect(string(k.Spec.Name)).To(Equal(name), "the name round-trips byte for byte")
		}
	})

	It("accepts names, wildcards, v4 and v6 addresses and CIDRs, and defaults enabled", func() {
		ctx := context.Background()
		k := key("good", func(k *keysv1.ApiKey) {
			k.Spec.Name = "Billing_Service.prod-2"
			k.Spec.Permissions = []keysv1.Permission{"*", "invoices:read", "tenant.apiKey:*", "api-keys-manage"}
			k.Spec.AllowedIPs = []keysv1.IPOrCIDR{"192.0.2.10", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32"}
			k.Spec.Audiences = []keysv1.Audience{"billing", "reports.example.com", "https://api.example.com/billing"}
			k.Spec.Rotation = &keysv1.RotationSpec{Period: duration(720 * time.Hour), GracePeriod: duration(24 * time.Hour)}
		})
		Expect(k8s.Create(ctx, k)).To(Succeed())
		Expect(k.Spec.Enabled).NotTo(BeNil())
		Expect(*k.Spec.Enabled).To(BeTrue())
	})

	It("bounds and checks a role's audiences as a key's", func() {
		ctx := context.Background()
		role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: "v", Name: "billing-readers"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"},
				Audiences: []keysv1.Audience{"billing", "https://api.example.com/billing"}}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		role.Spec.Audiences = []keysv1.Audience{"billing api"}
		err := k8s.Update(ctx, role)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`spec.audiences[0]: Invalid value: "billing api": must start with a letter or digit`))
		role.Spec.Audiences = nil
		for i := range 17 {
			role.Spec.Audiences = append(role.Spec.Audiences, keysv1.Audience(fmt.Sprintf("api-%d", i)))
		}
		err = k8s.Update(ctx, role)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`spec.audiences: Too many: 17: must have at most 16 items`))
	})

	It("accepts quotas with and without refill", func() {
		for name, q := range map[string]*keysv1.QuotaSpec{
			"quota-once":     {Limit: 1000},
			"quota-monthly":  {Limit: 1000, Refill: &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodMonth}},
			"quota-credits":  {Limit: keysv1.QuotaLimitMax, Refill: &keysv1.QuotaRefill{Interval: duration(time.Hour), Amount: 100}},
			"quota-ten-year": {Limit: 1, Refill: &keysv1.QuotaRefill{Interval: duration(keysv1.QuotaIntervalMax)}},
		} {
			k := key(name, func(k *keysv1.ApiKey) { k.Spec.Quota = q })
			Expect(k8s.Create(context.Background(), k)).To(Succeed(), name)
		}
	})

	It("keeps secretName immutable", func() {
		ctx := context.Background()
		k := key("immutable", func(k *keysv1.ApiKey) { k.Spec.SecretName = "first" })
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Spec.SecretName = "second"
		err := k8s.Update(ctx, k)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("secretName is immutable; create a new ApiKey to use another Secret"))
	})

	It("accepts a token hash with a grace period, and a new hash for it, but never a switch between kinds", func() {
		ctx := context.Background()
		k := key("hash-only", func(k *keysv1.ApiKey) {
			k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("0a", 32))
			k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: duration(time.Hour)}
		})
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("0b", 32))
		Expect(k8s.Update(ctx, k)).To(Succeed())

		k.Spec.TokenHash = ""
		err := k8s.Update(ctx, k)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("a key cannot switch between a minted token (no tokenHash) and a declared tokenHash; create a new ApiKey for the other kind"))

		minted := key("minted", func(*keysv1.ApiKey) {})
		Expect(k8s.Create(ctx, minted)).To(Succeed())
		minted.Spec.TokenHash = keysv1.TokenHash("sha256:" + strings.Repeat("0c", 32))
		err = k8s.Update(ctx, minted)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("a key cannot switch between a minted token"))
	})

	It("writes status only through the status subresource", func() {
		ctx := context.Background()
		k := key("status", func(*keysv1.ApiKey) {})
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Status.Hash = "sha256:" + strings.Repeat("0", 64)
		Expect(k8s.Update(ctx, k)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), k)).To(Succeed())
		Expect(k.Status.Hash).To(BeEmpty(), "status changes through the main resource must be ignored")
	})
})
