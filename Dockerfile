# syntax=docker/dockerfile:1
# The outq worker image: a Debian 12 builder running the project's own scripts, and a
# slim Debian 12 runtime holding the stripped binary and the shared libraries it links.
#   docker build -t outq:0.1.0 .        (or: podman build / buildah bud)
#   docker run --rm -v $PWD/outq.json:/etc/outq/outq.json:ro outq:0.1.0
# tests/integration/test_deploy_image.py checks that these steps are the scripts' and that
# the runtime packages are exactly what the binary links.

FROM debian:12 AS build
WORKDIR /src
COPY . .
# ccache survives between builds where the builder keeps cache mounts (BuildKit, Buildah).
ENV CCACHE_DIR=/root/.cache/ccache
RUN bash scripts/install-deps.sh --build-only
RUN --mount=type=cache,target=/root/.cache/ccache \
    bash scripts/build.sh --release /opt/outq

FROM debian:12-slim
# What `ldd outq` names, by package, and the CA bundle for HTTPS and rediss://.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libc6 libgcc-s1 libstdc++6 libssl3 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin outq
COPY --from=build /opt/outq/bin/outq /usr/local/bin/outq
COPY deploy/outq.example.json /usr/share/doc/outq/outq.example.json
# A numeric user, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 65532:65532
# Every command reads the config from here unless --config says otherwise.
ENV OUTQ_CONFIG=/etc/outq/outq.json
EXPOSE 9464
# `outq health` asks the worker's own /healthz at the config's metrics_listen (no curl in
# the image); liveness only: it never fails because Redis is down (docs/operations.md#health).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["outq", "health"]
# outq is PID 1 and drains on SIGTERM itself; give `docker stop -t` more than
# shutdown_grace_ms + 3 s (the default 10 s is less than the default grace of 15 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["outq"]
CMD ["run"]
