"""Contract tests: OpenAPI conformance (Schemathesis) and recording parity."""
