"""Local Replicate-compatible server (extra [local])."""
