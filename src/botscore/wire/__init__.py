"""The wire: protobuf payloads <-> plain records, and the dead-letter envelope."""
