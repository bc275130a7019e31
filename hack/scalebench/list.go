package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// bigNamespace holds --keys keys in one namespace for the REST list.
const bigNamespace = "scale-one"

// listFilter is the filtered list case: a search matching 10 keys of
// 10,000 (key-09990 to key-09999), none of 1,000.
const listFilter = "filter[search]=key-0999"

// listCase is one measured list request shape.
type listCase struct {
	name, hub, query string
	p50, p99, max    float64 // ms
	bytes            int
}

// restList calls the hub dialect's list over HTTPS with an API key: a page
// of 20 in one tenant of 100 while the cache holds all 10,000, then in one
// namespace holding 10,000 keys.
func (b *bench) restList(ctx context.Context) error {
	secret := &corev1.Secret{}
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: nsName("scale", 0), Name: adminKey}, secret); err != nil {
		return fmt.Errorf("admin key's secret: %w", err)
	}
	tenantToken := string(secret.Data[keysv1.SecretKeyField])

	// One namespace with --keys keys. No controller runs now: the admin
	// key's status is written here, as the controller would write it.
	if err := b.createNamespaces(ctx, bigNamespace); err != nil {
		return err
	}
	start := time.Now()
	if err := parallel(b.keys-1, setupWorkers, func(i int) error {
		return b.c.Create(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: bigNamespace, Name: fmt.Sprintf("key-%05d", i+1)}})
	}); err != nil {
		return err
	}
	bigToken, err := token.Mint(token.DefaultPrefix)
	if err != nil {
		return err
	}
	admin := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: bigNamespace, Name: "key-00000"},
		Spec: keysv1.ApiKeySpec{Permissions: []keysv1.Permission{"*"}}}
	if err := b.c.Create(ctx, admin); err != nil {
		return err
	}
	original := admin.DeepCopy()
	setIssued(admin, bigToken)
	if err := b.c.Status().Patch(ctx, admin, client.MergeFrom(original)); err != nil {
		return err
	}
	logf("created %d keys in namespace %s in %.1fs", b.keys, bigNamespace, time.Since(start).Seconds())
	if _, err := b.waitIndexed(ctx, b.apiserver, 2*b.keys); err != nil {
		return err
	}

	hc := tlsClient(b.tlsConf)
	base := "https://" + b.secure + "/v1/hubs/current/api-keys"
	cases := []*listCase{
		{name: fmt.Sprintf("one tenant of %d (%d keys), page 1 of 20", b.namespaces, b.keys/b.namespaces), hub: nsName("scale", 0)},
		{name: fmt.Sprintf("%d keys in one namespace, page 1 of 20", b.keys), hub: bigNamespace},
		{name: fmt.Sprintf("%d keys in one namespace, page 250 of 20", b.keys), hub: bigNamespace, query: "page[number]=250"},
		{name: fmt.Sprintf("%d keys in one namespace, sort=-created, page 1", b.keys), hub: bigNamespace, query: "sort=-created"},
		{name: fmt.Sprintf("%d keys in one namespace, %s", b.keys, listFilter), hub: bigNamespace, query: listFilter},
	}
	for _, c := range cases {
		tok := bigToken
		if c.hub != bigNamespace {
			tok = tenantToken
		}
		if err := b.measureList(ctx, hc, base, tok, c); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		logf("  %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d bytes)", c.name, c.p50, c.p99, c.max, c.bytes)
	}
	b.r.list = cases
	return nil
}

func (b *bench) measureList(ctx context.Context, hc *http.Client, base, tok string, c *listCase) error {
	url := base
	if c.query != "" {
		url += "?" + c.query
	}
	call := func() (time.Duration, int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Hub-Id", c.hub)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
		}
		return d, len(body), nil
	}
	for range 50 { // warm up connections and caches
		if _, _, err := call(); err != nil {
			return err
		}
	}
	ds := make([]float64, 0, b.listRequests)
	for range b.listRequests {
		d, n, err := call()
		if err != nil {
			return err
		}
		c.bytes = n
		ds = append(ds, float64(d.Microseconds())/1000)
	}
	slices.Sort(ds)
	c.p50, c.p99, c.max = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
	return nil
}
