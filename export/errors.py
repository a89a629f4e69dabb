"""Errors raised while exporting a bundle."""

from __future__ import annotations

from soundsentry.errors import SoundSentryError


class ExportCheckError(SoundSentryError):
    """An exported graph or detector does not reproduce its reference within tolerance."""
