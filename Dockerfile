# syntax=docker/dockerfile:1
# iamjit: one static binary on distroless. Build (multi-arch with buildx):
#   docker build --build-arg VERSION=$(git describe --tags --always) -t iamjit .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/iamjit .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/iamjit /iamjit
USER nonroot:nonroot
ENTRYPOINT ["/iamjit"]
CMD ["run"]
