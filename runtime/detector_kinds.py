"""The detector registry: every kind of detector a bundle can hold, and everything that differs between kinds.

Model loading, enrollment, training, the CLI and the GUI ask this module; adding a detector kind
means its class (in :mod:`soundsentry.detectors`, or anywhere importable) and one entry in
:data:`KINDS`, nothing else.

The module is import-light on purpose: the CLI reads :data:`DETECTOR_NAMES` to build its
arguments before NumPy is imported, so classes and hooks are named by ``"module:attribute"``
strings and imported on first use. Hooks that need the ``[train]`` extra (scikit-learn, skl2onnx)
live on the training/export side and are reached through those strings only, so the runtime never
imports that side.

Hook signatures (``"module:attribute"`` strings)
-----------------------------------------------
cls
    The runtime class: ``cls.load(path, *, session_options=None)`` returns an object with
    ``anomaly_score(latents) -> np.ndarray`` of shape (n,) (higher = more anomalous).
fit
    ``fit(latents, *, params) -> fitted``: latents (n, d) float64 of normal windows; ``fitted`` has
    ``anomaly_score`` like the loaded class. Enrollment and training both call it (so the leave-one-out
    calibration refits with exactly the code that fits the bundle's detector).
save
    ``save(fitted, path, *, latent_dim) -> None``: write the fitted detector to its bundle file.
card
    ``card(fitted, *, params, n_reference) -> dict``: the card entry's fields besides file and threshold.
check
    ``check(path, fitted, reference, queries) -> float``: relative error of the saved file against a
    reference implementation (training's export checks; ``[train]``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTOR_NAMES",
    "KINDS",
    "LOG_SPREAD_PRIORS",
    "TRAIN_EXTRA_HINT",
    "DetectorKind",
    "detector_kind",
    "require_extra",
]

#: The default detector of enrollment, training and a card that names none.
DEFAULT_DETECTOR = "lof"
TRAIN_EXTRA_HINT = 'pip install "soundsentry[train]"'


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class DetectorKind:
    """One kind of detector.

    Attributes
    ----------
    name : str
        The key in a card's ``detectors`` and on the command line.
    label : str
        Words for the GUI.
    file : str
        Its file in a bundle.
    cls, fit, save, card, check : str
        ``"module:attribute"`` of the hooks (signatures in the module docstring).
    threshold : {"lognormal", "robust"}
        Enrollment's threshold rule: :func:`~soundsentry.calibration.lognormal_threshold` with
        ``log_spread_prior`` (positive scores), or :func:`~soundsentry.calibration.robust_threshold`.
        Training uses the robust rule for every kind (it has many calibration clips).
    log_spread_prior : (float, float) or None
        ``(prior, single_recording)`` spreads of log clip scores for the log-normal rule.
    needs_train : bool
        Fitting needs the ``[train]`` extra (the file is scored by the plain install either way).
    per_recording : bool
        Fitted on each normal recording's latents apart (``fit(recordings, *, params, columns)``, the encoder's
        ``view_columns()``) and calibrated by the detector itself: its clip score is judged against 1
        (threshold ``"self"``). Only encoder kinds with view columns support it.
    params : dict
        Fitting parameters and their defaults; a parent card's values override the defaults,
        explicit options override both.
    config_fields : dict
        ``param -> TrainConfig attribute`` that training takes the parameter from.
    """

    name: str
    label: str
    file: str
    cls: str
    fit: str
    save: str
    card: str
    check: str
    threshold: str = "robust"
    log_spread_prior: tuple[float, float] | None = None
    needs_train: bool = False
    per_recording: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    config_fields: Mapping[str, str] = field(default_factory=dict)

    def load(self, path, *, session_options=None):
        """The detector stored at ``path`` (its bundle file), ready to score."""
        return _resolve(self.cls).load(path, session_options=session_options)

    def fit_latents(self, latents, *, params: Mapping[str, Any]):
        """Fit on normal latents (n, d); see the ``fit`` hook."""
        require_extra(self)
        if self.per_recording:
            raise TypeError(f"the {self.name} detector is fitted per recording: use fit_recordings")
        return _resolve(self.fit)(latents, params=dict(params))

    def fit_recordings(self, recordings, *, params: Mapping[str, Any], columns):
        """Fit a ``per_recording`` kind on each normal recording's latents (a list of (n_i, d) arrays)."""
        require_extra(self)
        return _resolve(self.fit)(recordings, params=dict(params), columns=columns)

    def save_fitted(self, fitted, path, *, latent_dim: int) -> None:
        _resolve(self.save)(fitted, path, latent_dim=latent_dim)

    def card_fields(self, fitted, *, params: Mapping[str, Any], n_reference: int) -> dict[str, Any]:
        return _resolve(self.card)(fitted, params=dict(params), n_reference=n_reference)

    def check_saved(self, path, fitted, reference, queries) -> float:
        return float(_resolve(self.check)(path, fitted, reference, queries))

    def resolve_params(self, parent: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        """Fitting parameters: ``overrides`` (None = unset) over the parent card's entry over the defaults."""
        parent = parent or {}
        out = {}
        for key, default in self.params.items():
            value = overrides.get(key)
            if value is None:
                value = parent.get(key, default)
            out[key] = type(default)(value)
        return out


#: Every kind, in the order the CLI and the GUI list them.
#: Spreads of the log-normal rule: measured on normal recordings only by ``python -m studies.threshold_prior
#: --data ../shared/data/mimii/clips.csv --out docs/enrollment_thresholds.md`` (the smallest spreads that
#: flag at most 1 % of the other normal recordings of 14 machines); re-measure when encoders change.
KINDS: tuple[DetectorKind, ...] = (
    DetectorKind(
        name="views",
        label="Views: embedding, spectrum shape, level (recommended)",
        file="views.npz",
        cls="soundsentry.views:ViewsDetector",
        fit="soundsentry.views:fit_views",
        save="soundsentry.views:save_views",
        card="soundsentry.views:views_card",
        check="soundsentry.views:check_views",
        threshold="self",
        per_recording=True,
        params={"n_neighbors": 3, "top_k": 2, "quantile": 0.99, "level_floor_db": 3.0, "combine": "max-then-sum"},
    ),
    DetectorKind(
        name="lof",
        label="Local outlier factor",
        file="lof.npz",
        cls="soundsentry.detectors:LocalOutlierFactor",
        fit="soundsentry.detectors:fit_lof",
        save="soundsentry.detectors:save_npz",
        card="soundsentry.detectors:neighbours_card",
        check="soundsentry.export.verify:verify_lof",
        threshold="lognormal",
        log_spread_prior=(0.32, 0.22),
        params={"n_neighbors": 20},
        config_fields={"n_neighbors": "lof_neighbors"},
    ),
    DetectorKind(
        name="ocsvm",
        label="One-Class SVM",
        file="ocsvm.onnx",
        cls="soundsentry.detectors:OneClassSVMOnnx",
        fit="soundsentry.export.ocsvm:fit_ocsvm",
        save="soundsentry.export.ocsvm:save_ocsvm",
        card="soundsentry.detectors:ocsvm_card",
        check="soundsentry.export.verify:verify_ocsvm",
        threshold="robust",
        needs_train=True,
        params={"nu": 0.05, "gamma": "scale"},
        config_fields={"nu": "ocsvm_nu"},
    ),
    DetectorKind(
        name="knn",
        label="k nearest neighbours",
        file="knn.npz",
        cls="soundsentry.detectors:KNearestNeighbors",
        fit="soundsentry.detectors:fit_knn",
        save="soundsentry.detectors:save_npz",
        card="soundsentry.detectors:neighbours_card",
        check="soundsentry.export.verify:verify_knn",
        threshold="lognormal",
        log_spread_prior=(0.38, 0.26),
        params={"n_neighbors": 5},
        config_fields={"n_neighbors": "knn_neighbors"},
    ),
    DetectorKind(
        name="mahalanobis",
        label="Mahalanobis distance",
        file="mahalanobis.npz",
        cls="soundsentry.detectors:Mahalanobis",
        fit="soundsentry.detectors:fit_mahalanobis",
        save="soundsentry.detectors:save_npz",
        card="soundsentry.detectors:mahalanobis_card",
        check="soundsentry.export.verify:verify_mahalanobis",
        threshold="lognormal",
        log_spread_prior=(0.36, 0.34),
    ),
)

#: Names of :data:`KINDS`, for argument choices (no import beyond this module).
DETECTOR_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
#: ``name -> (prior, single_recording)`` of the kinds with the log-normal threshold rule.
LOG_SPREAD_PRIORS: dict[str, tuple[float, float]] = {
    k.name: k.log_spread_prior for k in KINDS if k.log_spread_prior is not None
}
_BY_NAME = {k.name: k for k in KINDS}


def detector_kind(name: str) -> DetectorKind:
    """The kind called ``name``; ``KeyError`` naming the known kinds otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r} (choose from: {', '.join(DETECTOR_NAMES)})") from None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require_extra(kind: DetectorKind) -> None:
    """Raise :class:`~soundsentry.errors.EnrollmentError` if fitting ``kind`` needs a missing ``[train]`` extra."""
    if not kind.needs_train:
        return
    missing = [m for m in ("sklearn", "skl2onnx") if not _importable(m)]
    if missing:
        from .errors import EnrollmentError

        plain = ", ".join(k.name for k in KINDS if not k.needs_train)
        raise EnrollmentError(
            f"{kind.name} enrollment needs the [train] extra ({', '.join(missing)} not installed): {TRAIN_EXTRA_HINT}; "
            f"these need no extra: {plain}"
        )
