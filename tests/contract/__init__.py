"""Contract tests (issue 6): OpenAPI conformance (Schemathesis) and recording parity."""
