"""Scoring audio that arrives in chunks (a microphone, a long file read in blocks).

The streaming scorer reproduces whole-clip scoring exactly: it pads the start with
``n_fft // 2`` zeros as centred framing does, computes each STFT frame once its samples
have all arrived, scores each window once its frames are complete, and pads the end on
:meth:`StreamingScorer.finish`. Chunk sizes therefore do not change the window scores.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from .audio import check_samples, select_channel
from .errors import AudioTooShortError, ScoringCancelled
from .scoring import STREAM_ABOVE_SECONDS, too_short

__all__ = [
    "STREAM_ABOVE_SECONDS",
    "STREAM_BLOCK_FRAMES",
    "StreamUpdate",
    "StreamingScorer",
    "file_seconds",
    "score_file_streamed",
]


@dataclass
class StreamUpdate:
    """What one :meth:`StreamingScorer.push` produced.

    Attributes
    ----------
    frames : np.ndarray, shape (n_mels, n_new_frames)
        New spectrogram columns in dB for a live view (the encoder kind's display rows).
    window_scores : np.ndarray, shape (n_new_windows,)
        Scores of windows completed by this chunk.
    first_window : int
        Index of the first of those windows since the stream began.
    latents : np.ndarray, shape (n_new_windows, latent_dim)
        The encoder's rows of those windows (a clip score of the ``views`` detector needs them).
    """

    frames: np.ndarray
    window_scores: np.ndarray
    first_window: int
    latents: np.ndarray | None = None


class StreamingScorer:
    """Incremental scorer; create it with :meth:`Model.stream`."""

    def __init__(self, model, *, sample_rate: int | None = None, detector: str | None = None, threshold=None) -> None:
        self.model = model
        self.detector = detector or model.default_detector
        self.threshold = threshold
        # The encoder kind says how samples become frames and frames become windows.
        g = model.encoder.stream
        self._g = g
        self._rate = model.sample_rate
        rate = sample_rate or self._rate
        self._resampler = (
            None
            if rate == self._rate
            else soxr.ResampleStream(rate, self._rate, 1, dtype="float32", quality="HQ")
        )
        self._samples = np.zeros(g.pad_samples, dtype=np.float32)  # centred framing's left padding
        self._frames = np.zeros((g.n_features, 0), dtype=np.float32)  # frames not yet past every window
        self._frames_offset = 0  # absolute index of self._frames[:, 0]
        self._n_frames = 0
        self._scores: list[np.ndarray] = []
        self._latents: list[np.ndarray] = []
        self._n_windows = 0
        self._received = 0
        self._finished = False

    @property
    def samples_received(self) -> int:
        """Samples received so far, at the model's rate."""
        return self._received

    @property
    def window_scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros(0)

    @property
    def latents(self) -> np.ndarray:
        """Encoder rows of every window scored so far, shape (n_windows, latent_dim)."""
        if not self._latents:
            return np.zeros((0, self.model.encoder.latent_dim), np.float32)
        return np.concatenate(self._latents)

    def push(self, chunk: np.ndarray) -> StreamUpdate:
        """Add samples, shape (n,) or (n, channels), at the stream's rate."""
        if self._finished:
            raise RuntimeError("stream already finished")
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.size:
            check_samples(chunk)
        chunk = select_channel(chunk, policy=self.model.channel) if chunk.ndim == 2 else chunk
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        return self._consume(chunk)

    def _consume(self, mono: np.ndarray, *, received: bool = True) -> StreamUpdate:
        g = self._g
        if received:
            self._received += mono.shape[0]
        self._samples = np.concatenate([self._samples, mono])
        n = self._samples.shape[0]
        n_new = 0 if n < g.frame_length else 1 + (n - g.frame_length) // g.frame_hop
        if n_new:
            used = (n_new - 1) * g.frame_hop + g.frame_length
            new_frames = self.model.encoder.frame_features(self._samples[:used])
            self._samples = self._samples[n_new * g.frame_hop :]
            self._frames = np.concatenate([self._frames, new_frames], axis=1)
            self._n_frames += n_new
        else:
            new_frames = np.zeros((g.n_features, 0), dtype=np.float32)
        scores, latents, first = self._score_ready_windows()
        return StreamUpdate(
            frames=self.model.display(new_frames), window_scores=scores, first_window=first, latents=latents
        )

    def _score_ready_windows(self) -> tuple[np.ndarray, np.ndarray, int]:
        length, hop = self._g.window_frames, self._g.window_hop_frames
        first = self._n_windows
        n_ready = 0 if self._n_frames < length else 1 + (self._n_frames - length) // hop
        if n_ready <= first:
            return np.zeros(0), np.zeros((0, self.model.encoder.latent_dim), np.float32), first
        start = first * hop - self._frames_offset
        stop = (n_ready - 1) * hop + length - self._frames_offset
        windows = self.model.windows(self._frames[:, start:stop])
        latents = self.model.embed(windows)
        scores = self.model.score_latents(latents, detector=self.detector)
        self._scores.append(scores)
        self._latents.append(latents)
        self._n_windows = n_ready
        # Keep only frames that a later window still needs.
        keep_from = n_ready * hop - self._frames_offset
        self._frames = self._frames[:, keep_from:]
        self._frames_offset += keep_from
        return scores, latents, first

    def finish(self):
        """Flush the end of the stream and return the clip's :class:`ScoreResult`."""
        if self._finished:
            raise RuntimeError("stream already finished")
        tail = (
            self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if self._resampler
            else np.zeros(0, np.float32)
        )
        self._consume(tail)
        # Right padding of centred framing; it adds frames but is not audio received.
        self._consume(np.zeros(self._g.pad_samples, dtype=np.float32), received=False)
        self._finished = True
        if self._n_windows == 0:
            raise too_short(self.model, self._received)
        return self.model.result(
            self.window_scores, latents=self.latents, detector=self.detector, threshold=self.threshold
        )


#: Frames decoded per block when streaming a file: 4 s at 16 kHz, 256 KiB per channel.
STREAM_BLOCK_FRAMES = 1 << 16


def file_seconds(path: str | os.PathLike[str]) -> float | None:
    """Duration from the file's header, or ``None`` when the header cannot be read.

    Only used to choose between whole-file and streamed decoding, never to size a buffer.
    """
    p = os.fspath(path)
    try:
        # Never open a FIFO or device just to peek (it could block); the decoder reports those.
        if not stat.S_ISREG(os.stat(p).st_mode):
            return None
        info = sf.info(os.fsencode(p))  # bytes: a name that is not UTF-8 must work too
    except Exception:  # whatever is wrong is reported by the decoder that runs next
        return None
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return info.frames / info.samplerate


def score_file_streamed(
    model,
    path: str | os.PathLike[str],
    *,
    detector: str | None = None,
    threshold: float | None = None,
    block_frames: int = STREAM_BLOCK_FRAMES,
    cancel: threading.Event | None = None,
):
    """Score a file decoded block by block: memory does not grow with the recording's length.

    The window scores equal whole-file scoring (:meth:`Model.score`) within float rounding,
    as the :class:`StreamingScorer` does for any chunking.

    Returns
    -------
    ScoreResult
        With ``path`` set and ``extra["flags"]``, the quality flags
        (:func:`~soundsentry.quality.signal_flags`) of the scored channel.

    Raises
    ------
    AudioError
        Naming ``path``: not decodable, no samples, NaN/infinite samples, or too short.
    ScoringCancelled
        ``cancel`` was set before the end (checked between blocks of 4 s): an hour-long file in a batch
        that is being closed stops within a block instead of being scored to its end for nobody.
    """
    from .audio import AudioBlocks
    from .quality import SignalStats

    p = os.fspath(path)
    stats = SignalStats()
    with AudioBlocks(p, block_frames=block_frames, channel=model.channel) as blocks:
        scorer = model.stream(sample_rate=blocks.sample_rate, detector=detector, threshold=threshold)
        for block in blocks:
            if cancel is not None and cancel.is_set():
                raise ScoringCancelled(p, "scoring stopped before the end (the batch was closed)")
            stats.update(block)
            scorer.push(block)
    try:
        result = scorer.finish()
    except AudioTooShortError as exc:
        raise AudioTooShortError(p, exc.problem) from None
    result.path = p
    result.extra["flags"] = stats.flags()
    return result
