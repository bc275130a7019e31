package hardening_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Brute force", func() {
	ctx := context.Background()

	It("throttles random keys from one address while a valid key from another is never refused", func() {
		_, valid := makeKey(ctx, nsBrute, "brute-valid", nil)
		legit := net.IPv4(127, 0, 8, 2)
		Eventually(func() (int, error) { return verifyFrom(legit, valid) }).WithTimeout(20 * time.Second).Should(Equal(200))

		attempts := envInt("HARDENING_BRUTE_KEYS", 100000)
		attacker := net.IPv4(127, 0, 8, 1)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: attacker}, Timeout: 5 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

		var next, refused, throttled, other atomic.Int64
		stop := make(chan struct{})
		var legitLatencies []time.Duration
		var legitFailures []string
		var legitWG sync.WaitGroup
		legitWG.Add(1)
		go func() {
			defer GinkgoRecover()
			defer legitWG.Done()
			ld := &net.Dialer{LocalAddr: &net.TCPAddr{IP: legit}, Timeout: 5 * time.Second}
			ltr := &http.Transport{DialContext: ld.DialContext}
			defer ltr.CloseIdleConnections()
			lc := &http.Client{Transport: ltr, Timeout: 30 * time.Second}
			// A steady client, paced at 500 requests a second, not a
			// second flood.
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				req, _ := http.NewRequest(http.MethodGet, verifyBase+"/v1/auth?"+suiteScope(), nil)
				req.Header.Set("Authorization", "Bearer "+valid)
				start := time.Now()
				resp, err := lc.Do(req)
				took := time.Since(start)
				if err != nil {
					legitFailures = append(legitFailures, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					legitFailures = append(legitFailures, resp.Status)
				}
				legitLatencies = append(legitLatencies, took)
			}
		}()

		began := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for next.Add(1) <= int64(attempts) {
					req, _ := http.NewRequest(http.MethodGet, verifyBase+"/v1/auth?"+suiteScope(), nil)
					req.Header.Set("Authorization", "Bearer "+mint())
					resp, err := hc.Do(req)
					Expect(err).NotTo(HaveOccurred())
					_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
					resp.Body.Close()
					switch resp.StatusCode {
					case 401:
						refused.Add(1)
					case 429:
						Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
						throttled.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(began)

		By("the attacker's own valid key still works: the guard never blocks a valid key")
		st, err := verifyFrom(attacker, valid)
		Expect(err).NotTo(HaveOccurred())
		Expect(st).To(Equal(200))
		close(stop)
		legitWG.Wait()

		Expect(other.Load()).To(BeZero(), "every random key is refused (401) or throttled (429)")
		Expect(refused.Load() + throttled.Load()).To(Equal(int64(attempts)))
		// Budget: a burst of 20 and 5 a second (verify.NewOptions), and
		// some slack; everything beyond is 429.
		budget := int64(20 + 5*elapsed.Seconds() + 10)
		Expect(refused.Load()).To(BeNumerically("<=", budget), "failures beyond the budget are throttled")
		Expect(legitFailures).To(BeEmpty(), "the valid key from another address is never refused")
		Expect(legitLatencies).NotTo(BeEmpty())
		slices.Sort(legitLatencies)
		p := func(q float64) time.Duration { return legitLatencies[int(q*float64(len(legitLatencies)-1))] }
		AddReportEntry("brute force", fmt.Sprintf("%d random keys in %s (%.0f/s): %d refused, %d throttled; valid key from another address: %d requests, p50 %s, p99 %s, max %s",
			attempts, elapsed.Round(time.Millisecond), float64(attempts)/elapsed.Seconds(), refused.Load(), throttled.Load(),
			len(legitLatencies), p(0.5), p(0.99), legitLatencies[len(legitLatencies)-1]))
	})
})
