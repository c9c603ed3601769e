"""pytest plugin: fixtures for a local Replicate server (filled in by the local server work)."""
