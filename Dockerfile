# The apikey-operator image: one static binary on distroless, non-root.
# Both Deployments run it (`controller`, `apiserver`).
#   make docker-build IMG=registry.example.com/apikey-operator:v0.1.0
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 -t $IMG --push .

FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY main.go ./
COPY api/ api/
COPY controllers/ controllers/
COPY webhook/ webhook/
COPY internal/ internal/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/apikey-operator .

FROM gcr.io/distroless/static-debian12:nonroot
# `make image` builds the same image without an engine (internal/image);
# internal/image's Dockerfile test fails when the two drift apart.
LABEL org.opencontainers.image.title="apikey-operator" \
      org.opencontainers.image.description="API keys managed the Kubernetes way: ApiKey and ApiKeyRole resources, verified at gateway speed." \
      org.opencontainers.image.source="https://github.com/apikey-operator/apikey-operator"
COPY --from=builder /out/apikey-operator /apikey-operator
# 65532 is distroless' nonroot user; the charts' runAsUser matches it.
USER 65532:65532
ENTRYPOINT ["/apikey-operator"]
