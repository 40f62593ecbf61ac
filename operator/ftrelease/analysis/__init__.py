"""The MetricSource protocol, Prometheus, the judges, built-in metric templates, the simulator."""
