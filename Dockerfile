# syntax=docker/dockerfile:1.7
# One image per service, all from this file:
#   docker build --build-arg SERVICE=member -t dailyfeed-member .
# SERVICE is one of queue member content timeline image search activity (the binary, package
# and service name). The runtime image holds the binary and a bash health check, runs as uid
# 10001, and needs nothing writable except /tmp (Kubernetes mounts an emptyDir there).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG SERVICE
# rdkafka builds its bundled librdkafka with ./configure + make (gcc, make, perl, pkg-config
# and zlib headers; the rust image has them, the explicit install keeps that true).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential perl pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The port each service listens on by default (README "What runs"), for the health check.
RUN case "${SERVICE:-}" in \
      queue) port=8080 ;; member) port=8081 ;; content) port=8082 ;; timeline) port=8083 ;; \
      image) port=8084 ;; search) port=8085 ;; activity) port=8086 ;; \
      *) echo "build with --build-arg SERVICE=<queue|member|content|timeline|image|search|activity>, got '${SERVICE:-}'" >&2; exit 1 ;; \
    esac \
 && mkdir -p /out/etc/dailyfeed /out/usr/local/bin \
 && echo "$port" > /out/etc/dailyfeed/port
# Cache mounts keep the registry and target dir between builds on one builder. `--bin`, not
# `-p`: the image service's package shares its name with the `image` codec crate.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin "$SERVICE" \
 && cp "target/release/$SERVICE" /out/usr/local/bin/ \
 && ln -s "$SERVICE" /out/usr/local/bin/dailyfeed-service

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG SERVICE
# ca-certificates: TLS to the collector, object store and OAuth providers. Everything else the
# binary links (glibc, libgcc_s, zlib) is in the slim image already.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dailyfeed \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin dailyfeed
COPY --from=build /out/ /
COPY --chmod=0755 deploy/docker/healthcheck /usr/local/bin/healthcheck
LABEL org.opencontainers.image.title="dailyfeed-${SERVICE}" \
      org.opencontainers.image.description="dailyfeed ${SERVICE} service" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV SERVER_HOST=0.0.0.0 \
    LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
# seeds/004: every 25 s, 5 s timeout, 3 failures, 60 s to start.
HEALTHCHECK --interval=25s --timeout=5s --retries=3 --start-period=60s \
  CMD ["/usr/local/bin/healthcheck", "/health/live"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dailyfeed-service"]
