"""The encoder registry: every kind of front end + encoder a bundle can hold.

A card's ``encoder.kind`` selects the class (absent in cards written before kinds existed:
``"logmel-conv"``, the log-mel spectrogram + convolutional encoder). The class owns everything
between mono samples at the model's rate and latents: the front end, window assembly, the ONNX
embedding, window timing, the shortest usable input and what the streaming scorer needs to build
windows incrementally. :class:`~soundsentry.model.Model` delegates to it.

Adding a kind means one module with a class that follows :class:`Encoder` and one entry in
:data:`ENCODER_KINDS` (a ``"module:Class"`` string, imported on first use so this module stays light).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DEFAULT_ENCODER_KIND",
    "ENCODER_KINDS",
    "Encoder",
    "StreamGeometry",
    "card_encoder_kind",
    "encoder_class",
    "open_encoder",
]

#: The kind of a card without ``encoder.kind``.
DEFAULT_ENCODER_KIND = "logmel-conv"

#: ``kind -> "module:Class"``.
ENCODER_KINDS: dict[str, str] = {
    "logmel-conv": "soundsentry.logmel_encoder:LogMelConvEncoder",
    "edgel3-views": "soundsentry.edgel3_encoder:EdgeL3ViewsEncoder",
}


@dataclass(frozen=True)
class StreamGeometry:
    """How a stream of samples becomes feature frames and windows, for :class:`~soundsentry.streaming.StreamingScorer`.

    The scorer pads the start (and, at the end, the end) with ``pad_samples`` zeros, computes a
    frame from every ``frame_length`` samples every ``frame_hop`` samples with
    :meth:`Encoder.frame_features`, and a window from every ``window_frames`` frames every
    ``window_hop_frames`` frames with :meth:`Encoder.windows`; so streamed windows equal whole-clip ones.
    """

    pad_samples: int
    frame_length: int
    frame_hop: int
    window_frames: int
    window_hop_frames: int
    n_features: int


class Encoder(Protocol):
    """What an encoder kind provides (all arrays float32 unless said).

    ``__init__(card, *, bundle, session_options=None)`` validates the card's own sections and opens
    the ONNX file(s) of the bundle (``bundle.path(card_relative_name)`` resolves a file safely inside
    it; ``bundle.root`` names it in errors); it raises :class:`~soundsentry.errors.ModelIntegrityError` on
    anything wrong.
    """

    kind: str
    #: Model rate in Hz: the samples every method takes are mono at this rate.
    sample_rate: int
    latent_dim: int

    def features(self, y: Any) -> Any:
        """Front end of a whole recording: (n,) samples -> features (n_features, n_frames)."""

    def frame_features(self, samples: Any) -> Any:
        """Front end of uncentred frames for streaming: samples -> (n_features, n_frames) per :attr:`stream`."""

    def windows(self, features: Any, *, level_reference_db: float | None = None) -> Any:
        """Encoder input windows of features, shape (n_windows, ...), float32 C-contiguous."""

    def embed(self, windows: Any, *, batch_size: int = 256) -> Any:
        """Latents of windows, shape (n_windows, latent_dim)."""

    def window_starts(self, n_windows: int) -> Any:
        """Start time in seconds of each of ``n_windows`` windows of a recording, shape (n_windows,)."""

    @property
    def window_seconds(self) -> float:
        """Length of one window in seconds."""

    @property
    def min_samples(self) -> int:
        """Fewest samples that give one window."""

    @property
    def stream(self) -> StreamGeometry:
        """Framing for incremental scoring."""


def card_encoder_kind(card: Mapping[str, Any]) -> str:
    """The encoder kind a card names (``encoder.kind``; absent: :data:`DEFAULT_ENCODER_KIND`)."""
    encoder = card.get("encoder")
    kind = encoder.get("kind", DEFAULT_ENCODER_KIND) if isinstance(encoder, Mapping) else DEFAULT_ENCODER_KIND
    return str(kind)


def encoder_class(kind: str) -> type:
    """The class of encoder ``kind``; ``KeyError`` naming the known kinds otherwise."""
    try:
        ref = ENCODER_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown encoder kind {kind!r} (known: {', '.join(ENCODER_KINDS)})") from None
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def open_encoder(card: Mapping[str, Any], *, bundle, session_options=None) -> Encoder:
    """The encoder of a bundle (:class:`~soundsentry.bundle.Bundle`): its card's kind, built from the card and its files."""
    from .errors import ModelIntegrityError

    try:
        cls = encoder_class(card_encoder_kind(card))
    except KeyError as exc:
        raise ModelIntegrityError(f"{bundle.root}: {exc.args[0]}") from None
    return cls(card, bundle=bundle, session_options=session_options)
