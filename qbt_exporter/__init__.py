"""qbt-exporter: a Prometheus exporter for qBittorrent's legacy WebUI API and /api/v2."""

__version__ = "0.1.0"
