"""Recording level per source and label: a check of what a test set compares besides faults.

MIMII was released at three signal-to-noise ratios (6, 0 and -6 dB): the same machine sound
mixed with more or less factory noise, so the mixes differ in level by several dB. If a test's
normal clips come from one mix and its abnormal clips from another, a detector is scored on the
mix as much as on the fault. This module measures it: the channel-0 RMS level in dBFS of every
clip, grouped by source repository, label and recorded SNR, next to the clips whose SNR the
data records. It reads audio only; it trains and chooses nothing.

``python -m studies.level_check --data ../shared/data/mimii/clips.csv --type fan --machine id_00``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from soundsentry.audio import read_audio
from soundsentry.train.data import Clip, read_clips_csv

__all__ = ["clip_level_db", "level_markdown"]


def clip_level_db(path: str | Path) -> float:
    """Channel-0 RMS level of a file in dB relative to full scale."""
    samples, _ = read_audio(path)
    rms = float(np.sqrt(np.mean(np.square(samples[:, 0], dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-12))


def _rows(groups: dict[tuple, list[float]]) -> list[str]:
    out = []
    for key, levels in sorted(groups.items()):
        out.append(
            "| " + " | ".join(key) + f" | {len(levels)} | {statistics.median(levels):.1f} | "
            f"{min(levels):.1f} to {max(levels):.1f} |"
        )
    return out


def level_markdown(clips: list[Clip], *, machine_type: str, machines: tuple[str, ...]) -> str:
    """Two Markdown tables: the test machines' clips by source and label, and every clip whose SNR is recorded."""
    test = [c for c in clips if c.machine_type == machine_type and c.machine_id in machines]
    by_source: dict[tuple, list[float]] = defaultdict(list)
    for c in test:
        key = (c.dataset, c.source.split("/")[0] or "?", c.label, c.snr_db or "not recorded")
        by_source[key].append(clip_level_db(c.path))
    by_snr: dict[tuple, list[float]] = defaultdict(list)
    for c in clips:
        if c.snr_db and c.dataset == "MIMII":
            by_snr[(c.snr_db + " dB", c.label)].append(clip_level_db(c.path))
    lines = [
        f"{machine_type} {', '.join(machines)}, every clip, channel 0:",
        "",
        "| dataset | source | label | SNR recorded | clips | median level (dBFS) | range |",
        "|---|---|---|---|---:|---:|---|",
        *_rows(by_source),
        "",
        "Original MIMII clips (all types) whose SNR the data records:",
        "",
        "| SNR | label | clips | median level (dBFS) | range |",
        "|---|---|---:|---:|---|",
        *_rows(by_snr),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.level_check", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="clips.csv of the shared MIMII clips")
    parser.add_argument("--type", default="fan", help="machine type (default: fan)")
    parser.add_argument("--machine", action="append", help="machine id(s) (default: id_00)")
    args = parser.parse_args(argv)
    print(level_markdown(read_clips_csv(args.data), machine_type=args.type, machines=tuple(args.machine or ["id_00"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
