# apikey-operator. `make help` lists the targets.

BIN          ?= $(CURDIR)/bin
GO           ?= go
CONTROLLER_GEN = $(GO) tool controller-gen
export KUBEBUILDER_ASSETS = $(BIN)
# What `make generate manifests` writes; `make verify` fails when it drifts.
GENERATED    = api config/crd config/rbac/role.yaml config/webhook/manifests.yaml internal/apiserver/openapi

.DEFAULT_GOAL := help

##@ Start here

.PHONY: run
run: build controlplane ## Start a local control plane, the operator and sample keys; Ctrl-C stops all.
	@$(GO) build -o $(BIN)/localrun ./hack/localrun
	@$(BIN)/localrun --bin $(BIN)

.PHONY: test
test: controlplane ## Run every test: unit, fuzz seeds, and envtest suites on the real control plane.
	$(GO) test ./... -count=1 -timeout 30m

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code and the aggregated API's OpenAPI definitions from the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(GO) tool openapi-gen --output-dir internal/apiserver/openapi --output-file zz_generated.openapi.go \
		--output-pkg github.com/apikey-operator/apikey-operator/internal/apiserver/openapi \
		--go-header-file hack/boilerplate.go.txt --report-filename /dev/null --output-model-name-file zz_generated.model_name.go \
		k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version \
		github.com/apikey-operator/apikey-operator/api/access/v1alpha1

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from markers into config/.
	$(CONTROLLER_GEN) rbac:roleName=manager crd webhook paths="{./api/...,./controllers/...,./webhook/...}" \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac output:webhook:artifacts:config=config/webhook

.PHONY: verify
verify: generate manifests ## Regenerate and fail if generated files or formatting drifted.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@git diff --exit-code -- $(GENERATED) || { echo "generated files drifted from their markers: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { echo "untracked generated files: run 'make generate manifests' and commit"; git status --porcelain -- $(GENERATED); exit 1; }

.PHONY: build
build: ## Build bin/apikey-operator.
	$(GO) build -o $(BIN)/apikey-operator .

.PHONY: controlplane
controlplane: ## Build kube-apiserver, etcd and kubectl from Go modules into bin/ (once).
	@hack/controlplane.sh $(BIN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Verify

.PHONY: bench
bench: controlplane ## Run the verify benchmarks (core, forward-auth vs hello-world) and write docs/benchmarks.md.
	@hack/bench.sh

.PHONY: gateways
gateways: ## Install NGINX, Caddy and wrk from Debian's packages for the gateway tests (idempotent).
	@hack/gateways-install.sh
