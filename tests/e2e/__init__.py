"""End-to-end tests against a real qbittorrent-nox and a real Prometheus (marker ``e2e``)."""
