"""What operators see: the metric catalogue and the Datadog dashboards and monitors built on it."""
