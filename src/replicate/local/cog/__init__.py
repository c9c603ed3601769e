"""Helpers for serving users' Cog models (see ``replicate.local.cog_worker``).

``schema_probe.py`` is a standalone script run inside a model's own interpreter.
"""
