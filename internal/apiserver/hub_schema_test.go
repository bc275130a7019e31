package apiserver_test

import (
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apikey-operator/apikey-operator/internal/dialect/hub/hubspec"
)

// Every answer of the hub dialect that any test of this suite receives
// is validated against the product's own OpenAPI files with kin-openapi
// (package hubspec), as it arrives: keys and roles, successes and
// errors. At the end of a full run every operation must have been seen
// both succeeding and failing (checkHubCoverage, from AfterSuite).

var (
	hubSchemaOnce sync.Once
	hubSchema     *hubspec.Validator
	hubSchemaErr  error
)

// checkHubAnswer validates r when it answers a request to the hub dialect.
func checkHubAnswer(method, target string, r response) {
	if !strings.HasPrefix(target, "/v1/hubs/") {
		return
	}
	hubSchemaOnce.Do(func() { hubSchema, hubSchemaErr = hubspec.Load() })
	ExpectWithOffset(2, hubSchemaErr).NotTo(HaveOccurred())
	ExpectWithOffset(2, hubSchema.Validate(method, target, r.status, r.header, []byte(r.body))).To(Succeed(),
		"the hub answer to %s %s must match the product's OpenAPI schema: %s", method, target, r.body)
}

// checkHubCoverage fails a full run in which some hub operation was not
// seen both succeeding and failing. A focused run checks only what ran.
func checkHubCoverage() {
	cfg, _ := GinkgoConfiguration()
	if len(cfg.FocusStrings) > 0 || len(cfg.FocusFiles) > 0 || len(cfg.SkipStrings) > 0 || cfg.LabelFilter != "" || hubSchema == nil {
		return
	}
	Expect(hubSchema.Uncovered()).To(BeEmpty(), "hub operations the suite never saw succeed or fail (seen: %s)", hubSchema.Seen())
	GinkgoWriter.Printf("hub answers validated against the product's OpenAPI files: %s\n", hubSchema.Seen())
}
