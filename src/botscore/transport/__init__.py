"""Moving records reliably: Kafka and Redis clients, offsets, in-flight tuples."""
