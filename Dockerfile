# Damselfly image: a release build, then a small Debian runtime with
# redis-cli for health checks, running as a non-root user with data in /data.
#
#   docker build -t damselfly .
#   docker run -p 6379:6379 -v damselfly-data:/data damselfly --requirepass=secret
#
# Arguments after the image name are Damselfly's flags (Dragonfly's names),
# or a redis.conf path followed by Redis-style options.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin damselfly

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-tools ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 999 damselfly \
    && useradd --system --uid 999 --gid damselfly --home-dir /data --shell /usr/sbin/nologin damselfly \
    && mkdir -p /data \
    && chown damselfly:damselfly /data
COPY --from=build /src/target/release/damselfly /usr/local/bin/damselfly
USER damselfly
WORKDIR /data
VOLUME /data
EXPOSE 6379
# tini reaps children and forwards SIGTERM, so `docker stop` shuts down cleanly.
ENTRYPOINT ["tini", "--", "damselfly"]
CMD ["--bind=0.0.0.0", "--port=6379", "--dir=/data"]
