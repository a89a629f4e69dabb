"""Signal checks that do not stop scoring but must be seen: silence and clipping.

A dead microphone or a cut cable gives silence, and an overdriven input gives clipping.
The model still returns a score for such a recording, and the score may even look normal,
so the batch output flags them: a silent recording is not evidence of a healthy machine.

The checks look at the decoded samples of the channel the model hears, before resampling,
at the file's own scale (full scale is 1.0 for every sample format soundfile decodes).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLIP_FRACTION", "CLIP_LEVEL", "FLAGS", "SILENCE_DBFS", "SignalStats", "describe_flags", "signal_flags"]

#: Flags a row can carry, in the order they are listed.
FLAGS = ("silent", "clipped")

#: RMS level below which a recording counts as silent, in dB relative to full scale.
#: -70 dBFS is far below any machine recorded at a working distance (the MIMII fan clips
#: sit between -45 and -38 dBFS) and above the hiss floor of a live 16-bit input chain.
SILENCE_DBFS = -70.0

#: A sample at or above this magnitude (about -0.09 dBFS) is at the converter's limit.
CLIP_LEVEL = 0.99

#: Share of samples at the limit from which a recording counts as clipped. One peak that
#: touches full scale is not clipping; one in a thousand samples pinned there is.
CLIP_FRACTION = 1e-3


def signal_flags(samples: np.ndarray) -> tuple[str, ...]:
    """Quality flags of finite samples.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono samples at full scale 1.0, as decoded (before resampling).

    Returns
    -------
    tuple of str
        A subset of :data:`FLAGS`, in that order: ``"silent"`` when the RMS level is
        below :data:`SILENCE_DBFS` (all zeros included), ``"clipped"`` when at least
        :data:`CLIP_FRACTION` of the samples reach :data:`CLIP_LEVEL`.
    """
    y = np.asarray(samples, dtype=np.float32).reshape(-1)
    if y.size == 0:
        return ()
    flags = []
    # Blocks summed in float64: an hour of samples summed in float32 loses the small ones,
    # and a float64 copy of the whole hour would double the memory.
    block = 1 << 20
    energy = sum(float(np.dot(b, b.astype(np.float64))) for b in (y[i : i + block] for i in range(0, y.size, block)))
    rms = (energy / y.size) ** 0.5
    if rms < 10.0 ** (SILENCE_DBFS / 20.0):
        flags.append("silent")
    if np.count_nonzero(np.abs(y) >= CLIP_LEVEL) >= max(1, CLIP_FRACTION * y.size):
        flags.append("clipped")
    return tuple(flags)


def describe_flags(flags: tuple[str, ...]) -> str:
    """The flags in a user's words, for an error or a refusal that names the recording."""
    words = {
        "silent": f"silent (RMS level below {SILENCE_DBFS:g} dBFS: a dead microphone or a cut cable, not the machine)",
        "clipped": f"clipped (at least {CLIP_FRACTION:.1%} of the samples at full scale: an overdriven input)",
    }
    return " and ".join(words.get(f, f) for f in flags)


class SignalStats:
    """The numbers :func:`signal_flags` decides on, accumulated block by block.

    For recordings decoded in blocks (:class:`~soundsentry.audio.AudioBlocks`): feed each
    block of the scored channel to :meth:`update`, then :meth:`flags` gives what
    :func:`signal_flags` gives for the whole recording (the energy is summed in float64 in
    another order, which only matters for a level within rounding of the threshold).
    """

    def __init__(self) -> None:
        self.n_samples = 0
        self.energy = 0.0
        self.n_clipped = 0

    def update(self, samples: np.ndarray) -> None:
        y = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.n_samples += y.size
        self.energy += float(np.dot(y, y.astype(np.float64)))
        self.n_clipped += int(np.count_nonzero(np.abs(y) >= CLIP_LEVEL))

    def flags(self) -> tuple[str, ...]:
        if self.n_samples == 0:
            return ()
        flags = []
        if (self.energy / self.n_samples) ** 0.5 < 10.0 ** (SILENCE_DBFS / 20.0):
            flags.append("silent")
        if self.n_clipped >= max(1, CLIP_FRACTION * self.n_samples):
            flags.append("clipped")
        return tuple(flags)
