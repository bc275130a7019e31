# apikey-operator. `make help` lists the targets.

BIN          ?= $(CURDIR)/bin
GO           ?= go
CONTROLLER_GEN = $(GO) tool controller-gen
export KUBEBUILDER_ASSETS = $(BIN)
# What `make generate manifests` writes; `make verify` fails when it drifts.
GENERATED    = api config/crd config/rbac/role.yaml config/apiserver/role.yaml config/webhook/manifests.yaml internal/apiserver/openapi
# The image `make docker-build` builds and `make deploy` installs.
IMG          ?= ghcr.io/apikey-operator/apikey-operator:v0.1.0
CONTAINER_TOOL ?= docker
KUBECTL      ?= kubectl

.DEFAULT_GOAL := help

##@ Start here

.PHONY: run
run: build controlplane ## Start a local control plane, the operator and sample keys; Ctrl-C stops all.
	@$(GO) build -o $(BIN)/localrun ./hack/localrun
	@$(BIN)/localrun --bin $(BIN)

.PHONY: test
test: controlplane helm gateways ## Run every test: unit, fuzz seeds, envtest suites on the real control plane, then each fuzz target briefly.
	@# Build every test binary in parallel, then run the packages one at a
	@# time: several suites start their own kube-apiserver, and on two cores
	@# running them side by side makes their timing-sensitive specs flaky.
	$(GO) test ./... -count=1 -run '^$$' >/dev/null
	$(GO) test ./... -count=1 -p 1 -timeout 30m
	@# The gateway wiring against Gateway API, Envoy Gateway, Istio and Envoy's
	@# published types: its own module, so their dependencies stay out of go.mod.
	cd test/gateways && $(GO) test ./... -count=1
	@FUZZTIME=$(FUZZTIME_SHORT) GO=$(GO) hack/fuzz.sh

.PHONY: test-unit
test-unit: ## Run the tests that need no control plane (pure logic, fuzz seeds, in-memory store): seconds, Go only.
	$(GO) test -short ./... -count=1

.PHONY: lint
lint: ## Run go vet over every package.
	$(GO) vet ./...

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
	$(CONTROLLER_GEN) rbac:roleName=apiserver paths=./internal/operator/rbac/... output:rbac:artifacts:config=config/apiserver

.PHONY: chart
chart: ## Generate the chart's CRDs, RBAC rules and webhooks from config/, and the README's values table.
	$(GO) run ./hack/chartgen

.PHONY: verify
verify: generate manifests ## Regenerate and fail if generated files or formatting drifted, or an import crosses a wall (docs/architecture.md).
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@git diff --exit-code -- $(GENERATED) || { echo "generated files drifted from their markers: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { echo "untracked generated files: run 'make generate manifests' and commit"; git status --porcelain -- $(GENERATED); exit 1; }
	@$(GO) run ./hack/chartgen -check
	@GO=$(GO) hack/walls.sh

.PHONY: build
build: plugin ## Build bin/apikey-operator and the kubectl plugin bin/kubectl-apikey.
	$(GO) build -o $(BIN)/apikey-operator .

.PHONY: plugin
plugin: ## Build the kubectl plugin bin/kubectl-apikey (`kubectl apikey` once bin/ is on PATH; docs/operations.md).
	$(GO) build -o $(BIN)/kubectl-apikey ./cmd/kubectl-apikey
	@install -m 0755 cmd/kubectl-apikey/kubectl_complete-apikey $(BIN)/kubectl_complete-apikey

.PHONY: controlplane
controlplane: ## Build kube-apiserver, kube-controller-manager, etcd and kubectl from Go modules into bin/ (once; versions in hack/versions.env).
	@hack/controlplane.sh $(BIN)

.PHONY: node
node: ## Also build what a real node runs (kubelet, controller manager, scheduler, kube-proxy, containerd) into bin/ (once); apt-installs runc, CNI plugins, iptables.
	@hack/controlplane.sh --node $(BIN)

.PHONY: helm
helm: ## Build helm from Go modules into bin/ (once).
	@hack/helm.sh $(BIN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Install on a cluster (docs/install.md)

.PHONY: image
image: ## Build the operator's OCI image IMG as a tarball, bin/images/apikey-operator.tar, without a container engine (as ko does).
	$(GO) run ./hack/image --out $(BIN)/images --ref $(IMG)

.PHONY: docker-build
docker-build: ## Build the image IMG from the Dockerfile with CONTAINER_TOOL (docker, podman); no engine runs on the dev machines.
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: deploy
deploy: ## Install config/default (kustomize) with image IMG on the cluster of the current kubeconfig; needs cert-manager.
	$(KUBECTL) kustomize config/default | sed 's|image: ghcr.io/apikey-operator/apikey-operator:v0.1.0$$|image: $(IMG)|' | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: ## Remove what `make deploy` installed, CRDs and every ApiKey included.
	$(KUBECTL) delete -k config/default --ignore-not-found

##@ Verify

.PHONY: bench
bench: controlplane ## Run the verify benchmarks (core, forward-auth vs hello-world) and write docs/benchmarks.md.
	@hack/bench.sh

.PHONY: gateways
gateways: ## Install NGINX, Caddy, wrk, promtool (prometheus) and redis-server from Debian's packages for the gateway, alert-rule and rate-limit tests (idempotent).
	@hack/gateways-install.sh

.PHONY: e2e
e2e: ## Run the end-to-end suite: the image and chart on a real one-node cluster in its own network namespace (root; docs/e2e.md).
	@BIN=$(BIN) IMG=$(IMG) hack/e2e.sh

.PHONY: bench-connections
bench-connections: controlplane ## Flood the verify port with idle connections from one address, limits off and on; report the other client's p99 and errors and the process's files and RSS (docs/benchmarks.md).
	@$(GO) run ./hack/connbench --bin $(BIN)

KEYS ?= 10000

.PHONY: bench-scale
bench-scale: controlplane build ## Measure KEYS keys (default 10000; 1000 and 100000 for the growth table) on the local control plane: raw API limit, keys to Ready, memory, resync, startup, hub lists, etcd bytes, verify core. Writes the growth table's row for KEYS in docs/benchmarks.md, and at 10000 the scale section.
	$(GO) run ./hack/scalebench --bin $(BIN) --operator $(BIN)/apikey-operator --go $(GO) --keys $(KEYS)

##@ Hardening

FUZZTIME       ?= 10m
FUZZTIME_SHORT ?= 2000x

.PHONY: fuzz
fuzz: ## Run every Go fuzz target in the repository for FUZZTIME each (default 10m).
	@FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz.sh

.PHONY: soak
soak: controlplane ## Long forms of the hardening suite: repeated SIGKILLs, many conflicting writers, a long brute force.
	HARDENING_KILL_KEYS=200 HARDENING_KILL_ROUNDS=10 HARDENING_WRITERS=50 HARDENING_EDITS=40 HARDENING_BRUTE_KEYS=1000000 \
		$(GO) test ./test/hardening/ -count=1 -timeout 60m -ginkgo.v
