"""Monitoring as pure data: what every kind exports, what Prometheus scrapes, the alert and
recording rules with their unit tests, Alertmanager routing, Grafana dashboards, Loki and the
log shipper's configuration. The service modules (`swarm/services/{prometheus,alertmanager,
grafana,loki,log_shipper,node_exporter,gpu_exporter}.py`) render these into files."""
