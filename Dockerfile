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
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9561/healthz', timeout=4)"]
ENTRYPOINT ["qbt-exporter"]
