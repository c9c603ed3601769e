"""Python client for Replicate."""
