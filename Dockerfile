# ModelRelay's container image: the standalone executable (npm run package) on a small base, with
# both commands (and the simulated backend) on PATH. Build it from a checkout:
#
#   npm ci && npm run package && docker build -t modelrelay .
#
# Nothing is compiled or downloaded inside the build (no RUN): any base that provides glibc and
# libstdc++ (the C++ runtime Node links against) will do, shell or not. RUNTIME_IMAGE points the
# build at another base (the tests use one made from this machine's libraries).
ARG RUNTIME_IMAGE=debian:bookworm-slim
FROM ${RUNTIME_IMAGE}

LABEL org.opencontainers.image.title="ModelRelay" \
      org.opencontainers.image.description="One OpenAI/Anthropic-compatible endpoint for LLM backends on GPU boxes behind NAT" \
      org.opencontainers.image.licenses="MIT"

# The binary, its links (modelrelay-server, modelrelay-worker, modelrelay-mock-backend) and
# SQLite's addon, which must sit beside it.
COPY dist/bin/ /opt/modelrelay/
# The data directory, owned by the user the commands run as.
COPY --chown=10001:10001 extras/container/data/ /data/

ENV PATH=/opt/modelrelay:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LISTEN_ADDR=0.0.0.0:8080 \
    DATA_DIR=/data \
    HOME=/data
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080

# The server's /health, asked by the binary itself (the image need not have curl). A worker has no
# port: compose turns the check off for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["modelrelay", "healthcheck"]

CMD ["modelrelay-server"]
