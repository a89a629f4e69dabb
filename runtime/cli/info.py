"""``soundsentry models`` and ``soundsentry info``: the shipped models and a model's card."""

from __future__ import annotations

import argparse
import sys

from ..detector_kinds import DEFAULT_DETECTOR
from ..exit_codes import EXIT_MODEL_ERROR, EXIT_OK
from ._common import evidence_summary

__all__ = ["add_info_parser", "add_models_parser", "run_info", "run_models"]


def add_models_parser(sub) -> argparse.ArgumentParser:
    return sub.add_parser(
        "models",
        help="list shipped models",
        description="List the shipped models with how far each can be trusted: the held-out figure its card holds.",
    )


def add_info_parser(sub) -> argparse.ArgumentParser:
    info = sub.add_parser("info", help="print a model's card")
    info.add_argument("model", help="shipped model name or bundle folder")
    info.add_argument("--json", action="store_true", help="print the whole card as JSON")
    return info


def run_models(args: argparse.Namespace) -> int:
    from ..bundle import list_shipped_models, read_bundle

    rows = []
    for name in list_shipped_models():
        card = read_bundle(name, verify=False).card
        machine = card.get("machine_type") or "-"
        # The type only where it says something the name does not.
        label = name if machine in (name, "-") else f"{name} ({machine})"
        rows.append((label, evidence_summary(card)))
    width = max([len("model"), *(len(label) for label, _ in rows)])
    print(f"{'model':<{width}}  how far to trust it (its card's held-out evidence; AUC 0.5 is chance)")
    for label, evidence in rows:
        print(f"{label:<{width}}  {evidence}")
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    import json

    from ..bundle import read_bundle
    from ..errors import ModelError

    try:
        bundle = read_bundle(args.model)
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    card = bundle.card
    if args.json:
        print(json.dumps(card, indent=2))
        return EXIT_OK
    print(f"model:        {card['name']} ({card.get('machine_type', '?')})")
    print(f"folder:       {bundle.root}")
    encoder = card.get("encoder", {})
    print(f"encoder:      {encoder.get('kind', 'logmel-conv')}")
    w = card.get("window")
    if w:
        print(f"window:       {w['frames']} frames ({w.get('seconds', '?')} s), hop {w['hop_frames']} frames")
    elif encoder.get("front_end"):
        # Kinds without a window section (edgel3-views) describe their frames and windows here.
        print(f"front end:    {encoder['front_end']}")
    print(f"channel:      {card['channel']['policy']}")
    default = card.get("default_detector", DEFAULT_DETECTOR)
    views = card["detectors"].get(default, {}).get("views")
    if isinstance(views, list):
        # A detector with views makes its own clip score; the card's aggregate is for the others.
        from ..views import combine_rule

        rule = combine_rule(card["detectors"][default].get("combine", "max"))
        print(f"clip score:   {rule}; {card.get('score_direction', '')}")
        for v in views:
            floor = f", floor {v['floor']:g}" if v.get("floor") else ""
            print(f"view:         {v['name']} ({v['pool']}{floor}): threshold {v['threshold']:.4g}")
    else:
        print(f"aggregate:    {card.get('aggregate', 'mean')} of window scores; {card.get('score_direction', '')}")
    for name, det in card["detectors"].items():
        print(f"detector:     {name}: threshold {det['threshold']:.6g}" + (" (default)" if name == default else ""))
    print(f"threshold:    {next(iter(card['detectors'].values())).get('threshold_rule', '')}")
    training = card.get("training", {})
    if training.get("split"):
        print(f"training:     {training['split']}")
    enrollment = card.get("enrollment")
    if isinstance(enrollment, dict):
        print(
            f"enrolled:     {enrollment.get('n_recordings', '?')} recordings, {enrollment.get('seconds', '?')} s, "
            f"{enrollment.get('n_windows', '?')} windows on {enrollment.get('created', '?')}; "
            f"encoder from {enrollment.get('parent', {}).get('name', '?')!r}"
        )
    ev = card.get("evaluation")
    if ev:
        print(
            f"evaluation:   {ev['n_normal']} normal / {ev['n_abnormal']} abnormal held-out clips ({', '.join(ev['machines'])})"
        )
        for name in card["detectors"]:
            e = ev.get(name, {})
            if "auc" in e:
                print(f"              {name}: AUC {e['auc']:.3f}, pAUC(0.1) {e['pauc_fpr_0.1']:.3f}, F1 {e['f1']:.3f}")
    if not ev and card.get("evidence"):
        print(f"evidence:     {evidence_summary(card)}; see its card (--json) and docs/accuracy.md")
    if card.get("notes"):
        print(f"notes:        {card['notes']}")
    return EXIT_OK
