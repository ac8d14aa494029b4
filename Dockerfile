# qbt-exporter: Prometheus exporter for qBittorrent.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY qbt_exporter ./qbt_exporter
RUN pip install --no-cache-dir . \
    && rm -rf /app/build

# An unprivileged numeric user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65534:65534
ENV QBT_EXPORTER_WEB_LISTEN_ADDRESS=:9561
EXPOSE 9561
# Reads the same environment as the exporter, so it follows QBT_EXPORTER_WEB_LISTEN_ADDRESS and TLS;
# give the exporter's settings as environment variables, not flags, for the check to see them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["qbt-exporter", "healthcheck"]
ENTRYPOINT ["qbt-exporter"]
