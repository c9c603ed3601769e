"""The errors raised while serving a Cog model."""

from __future__ import annotations

__all__ = ["CogDirError", "CogError", "CogPredictionError", "CogSetupError"]


class CogError(Exception):
    """Base class for errors raised while serving a Cog model."""


class CogDirError(CogError, ValueError):
    """A ``--cog`` directory cannot be registered (missing files, bad ``cog.yaml``...)."""


class CogSetupError(CogError):
    """The model's ``setup()`` failed, or the runtime did not become ready.

    ``logs`` holds what the model and the runtime printed during setup.
    """

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.logs = logs


class CogPredictionError(CogError):
    """Raised by :func:`cog_callable` when a prediction fails (the message is ``error``)."""
