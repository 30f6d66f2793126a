"""Camera response curves: the project's curve family, their inverses, and the EMoR-style inverse PCA basis.

Every curve is sampled on the grid x_i = i/1023 (1024 samples), maps [0, 1] onto [0, 1] with f(0) = 0, f(1) = 1 and is
strictly increasing. A *forward* curve turns clipped linear irradiance into camera brightness; its *inverse* (brightness
→ irradiance) is what SingleHDR's Linearization-Net predicts, as g0 + H·w in a PCA basis (docs/models.md).

The DoRF curves and the EMoR basis files are not redistributable, so the project builds its own family
(docs/data.md) from a fixed seed: ``curve_bank()`` is a deterministic function of ``BANK_SEED`` and
``BANK_VERSION``. Its split (``CurveBank.train`` / ``CurveBank.eval``): 5 % of the in-family curves plus the whole
``HELD_OUT_FAMILY`` are evaluation-only; the PCA basis is computed from the training curves by
``zoo/data/make_basis.py`` and committed as ``zoo/data/assets/crf_basis_v1.npy`` with its sha256 (``BASIS_SHA256``),
so a model trained with it sees bit-identical basis vectors on every machine (an SVD is not bit-stable across BLAS
builds). A user-supplied official ``invemor.txt`` is read by ``read_invemor`` / ``load_inverse_basis(path)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

SAMPLES = 1024
GRID = np.linspace(0.0, 1.0, SAMPLES)  # i/1023, float64
MIN_SLOPE = 1e-4  # every family curve is mixed with this much of the identity so that it is strictly increasing

BANK_SEED = 20240611
BANK_VERSION = 1
HELD_OUT_FAMILY = "filmic"  # out-of-distribution test family: never in the training curves nor in the basis
HELD_OUT_SHARE = 0.05  # of each in-distribution family, for evaluation only
# curves per family in the bank (gamma also gets the three named standards: NTIRE 2.24, sRGB, Rec.709)
FAMILY_SIZES = {"gamma": 120, "sigmoid": 120, "log": 80, "smooth": 80, "perturbed": 80, "mixture": 80, "filmic": 60}
BASE_FAMILIES = ("gamma", "sigmoid", "log", "smooth")  # perturbations and mixtures start from their training curves

ASSET = Path(__file__).with_name("assets") / "crf_basis_v1.npy"  # (27, 1024) float64: grid, g0, h1..h25
BASIS_SHA256 = "eb26f5772887c7716dac96448a70f24f2e975afd78ee77e1380d045860cfd542"  # printed by make_basis.py
OFFICIAL_INVEMOR_SHA256 = "86dd5444b1d6bbfbabb02c39519909226a77774543a82a69a6f2b962914d82ee"  # docs/models.md


# ----------------------------------------------------------------------------------------------------------------------
# Sampled curves and the SingleHDR rules on them.


@dataclass(frozen=True)
class ResponseCurve:
    """One forward camera response sampled on ``GRID``: ``forward`` (1024,) float64 in [0, 1], strictly increasing.

    ``name`` is a stable id (``"<family>-<index>"`` or a standard's name), ``params`` the JSON-able generator
    parameters recorded in sample metadata.
    """

    name: str
    family: str
    forward: np.ndarray = field(repr=False)
    params: dict = field(default_factory=dict)

    @cached_property
    def inverse(self) -> np.ndarray:
        """The inverse curve (brightness → irradiance) on ``GRID``, (1024,) float64 in [0, 1]."""
        return inverse_curve(self.forward)


def inverse_curve(forward: np.ndarray) -> np.ndarray:
    """Invert a monotone sampled curve: interpolate the points (f(x_i), x_i) back onto the grid, endpoints pinned to
    0 and 1 (the convention of SingleHDR's ``_inverse_rf``). ``forward``: (..., 1024)."""
    forward = np.asarray(forward, dtype=np.float64)
    if forward.ndim > 1:
        return np.stack([inverse_curve(f) for f in forward.reshape(-1, SAMPLES)]).reshape(forward.shape)
    inverse = np.interp(GRID, forward, GRID)
    inverse[0], inverse[-1] = 0.0, 1.0
    return inverse


def apply_curve(x: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """SingleHDR's ``apply_rf``: a 1024-sample linear lookup of ``curve`` at positions 1023·x (float32 arithmetic).

    ``x`` any shape, nominally in [0, 1]; values outside saturate at the end samples. Returns float32, same shape.
    """
    curve = np.asarray(curve, dtype=np.float32)
    pos = np.asarray(x, dtype=np.float32) * np.float32(SAMPLES - 1)
    i0 = np.floor(pos)
    w1 = pos - i0  # weights are computed before the indices are clipped, exactly as the official lookup
    w0 = np.float32(1.0) - w1
    i0 = i0.astype(np.int64)
    lo = curve[np.clip(i0, 0, SAMPLES - 1)]
    hi = curve[np.clip(i0 + 1, 0, SAMPLES - 1)]
    return (w0 * lo + w1 * hi).astype(np.float32)


def increase(curve: np.ndarray) -> np.ndarray:
    """SingleHDR's monotone fix ``_increase`` on (..., 1024): shift the differences so none is negative, normalise
    them to sum 1, integrate from 0. The result starts at 0, ends at 1 and is non-decreasing."""
    curve = np.asarray(curve, dtype=np.float64)
    d = np.diff(curve, axis=-1)
    d = d + np.maximum(-d.min(axis=-1, keepdims=True), 0.0)
    d = d / d.sum(axis=-1, keepdims=True)
    return np.concatenate([np.zeros(curve.shape[:-1] + (1,)), np.cumsum(d, axis=-1)], axis=-1)


# ----------------------------------------------------------------------------------------------------------------------
# The curve family (docs/data.md). Each generator maps parameters to a (1024,) curve on GRID.


def gamma_curve(gamma: float) -> np.ndarray:
    """x ** (1/gamma)."""
    return GRID ** (1.0 / gamma)


def srgb_curve() -> np.ndarray:
    """The sRGB OETF (IEC 61966-2-1)."""
    return np.where(GRID <= 0.0031308, 12.92 * GRID, 1.055 * GRID ** (1 / 2.4) - 0.055)


def rec709_curve() -> np.ndarray:
    """The Rec.709 OETF."""
    return np.where(GRID < 0.018, 4.5 * GRID, 1.099 * GRID**0.45 - 0.099)


def sigmoid_curve(n: float, a: float) -> np.ndarray:
    """HDRCNN's camera curve (1 + a)·x^n / (x^n + a): concave for n ≤ 1, an S-curve with a toe for n > 1."""
    xn = GRID**n
    return (1.0 + a) * xn / (xn + a)


def log_curve(beta: float) -> np.ndarray:
    """log(1 + βx) / log(1 + β): a log-encoding camera curve, steeper in the shadows for larger β."""
    return np.log1p(beta * GRID) / math.log1p(beta)


def filmic_curve(gamma: float, contrast: float, balance: float) -> np.ndarray:
    """A camera "picture style": a display-space S-curve (toe and shoulder) after a gamma encoding,
    y = x^(1/gamma), f = y^c / (y^c + balance·(1 − y)^c) with contrast c > 1; ``balance`` moves the pivot."""
    y = GRID ** (1.0 / gamma)
    yc = y**contrast
    return yc / (yc + balance * (1.0 - y) ** contrast)


def smooth_curve(coefficients: list[float]) -> np.ndarray:
    """A random smooth monotone curve: the normalised integral of exp(Σ c_k cos(kπx)), i.e. positive increments from
    a low-order cosine basis."""
    k = np.arange(1, len(coefficients) + 1)
    log_slope = np.cos(np.pi * np.outer(GRID, k)) @ np.asarray(coefficients, dtype=np.float64)
    slope = np.exp(log_slope)
    y = np.concatenate([[0.0], np.cumsum((slope[1:] + slope[:-1]) / 2)])
    return y / y[-1]


def _finish(curve: np.ndarray) -> np.ndarray:
    """Pin the endpoints and mix in MIN_SLOPE of the identity so the curve is strictly increasing."""
    curve = np.clip((curve - curve[0]) / (curve[-1] - curve[0]), 0.0, 1.0)
    curve = np.maximum.accumulate(curve)
    return (curve + MIN_SLOPE * GRID) / (1.0 + MIN_SLOPE)


@dataclass(frozen=True)
class CurveBank:
    """The project's finite, seeded set of forward curves and its train/eval split.

    ``train``: curves the camera draws for training samples and the PCA basis is built from. ``eval``: held-out
    in-family curves followed by the whole ``HELD_OUT_FAMILY``; the frozen evaluation splits draw from these.
    """

    train: tuple[ResponseCurve, ...]
    eval: tuple[ResponseCurve, ...]
    seed: int
    version: int

    def by_name(self, name: str) -> ResponseCurve:
        for curve in self.train + self.eval:
            if curve.name == name:
                return curve
        raise ZooError(f"response curve {name!r}: not in the project's curve bank (version {self.version})")


def _draw_family(family: str, count: int, rng: np.random.Generator, pool: list[ResponseCurve]) -> list[ResponseCurve]:
    curves = []
    for i in range(count):
        name = f"{family}-{i:03d}"
        if family == "gamma":
            params = {"gamma": float(rng.uniform(1.6, 2.8))}
            y = gamma_curve(**params)
        elif family == "sigmoid":
            params = {"n": float(np.clip(rng.normal(0.9, 0.1), 0.2, 2.5)), "a": float(max(rng.normal(0.6, 0.1), 0.05))}
            y = sigmoid_curve(**params)
        elif family == "log":
            params = {"beta": float(10 ** rng.uniform(0.3, 3.0))}
            y = log_curve(**params)
        elif family == "filmic":
            params = {
                "gamma": float(rng.uniform(1.8, 2.6)),
                "contrast": float(rng.uniform(1.1, 1.8)),
                "balance": float(10 ** rng.uniform(-0.3, 0.3)),
            }
            y = filmic_curve(**params)
        elif family == "smooth":
            # a positive first coefficient makes the slope fall from black to white: concave, like real cameras
            coefficients = [rng.uniform(0.3, 2.0)] + list(rng.normal(0.0, 1.0, 3) * np.array([0.3, 0.2, 0.1]))
            params = {"coefficients": [float(c) for c in coefficients]}
            y = smooth_curve(**params)
        elif family == "perturbed":
            # a base curve composed with a near-identity monotone warp: f(w(x)), w = (1-s)·x + s·smooth(x)
            base = pool[int(rng.integers(len(pool)))]
            warp_coefficients = [float(c) for c in rng.normal(0.0, 0.5, 3)]
            strength = float(rng.uniform(0.1, 0.4))
            warp = (1 - strength) * GRID + strength * smooth_curve(warp_coefficients)
            params = {"base": base.name, "warp": warp_coefficients, "strength": strength}
            y = np.interp(warp, GRID, base.forward)
        elif family == "mixture":
            first, second = (pool[int(j)] for j in rng.choice(len(pool), 2, replace=False))
            weight = float(rng.uniform(0.2, 0.8))
            params = {"first": first.name, "second": second.name, "weight": weight}
            y = weight * first.forward + (1 - weight) * second.forward
        else:
            raise AssertionError(family)
        curves.append(ResponseCurve(name, family, _finish(y), params))
    return curves


@lru_cache(maxsize=1)
def curve_bank(seed: int = BANK_SEED) -> CurveBank:
    """Build the project's curve bank (about 620 curves, a few ms): a pure function of ``seed`` and ``BANK_VERSION``.

    Families are drawn in a fixed order from one generator, each split right after it is drawn; perturbations and
    mixtures are built only from training curves of the base families, so no held-out curve leaks into training.
    """
    rng = np.random.default_rng([seed, BANK_VERSION])
    standards = [
        ResponseCurve("gamma-2.24", "gamma", _finish(gamma_curve(2.24)), {"gamma": 2.24}),
        ResponseCurve("srgb", "gamma", _finish(srgb_curve()), {}),
        ResponseCurve("rec709", "gamma", _finish(rec709_curve()), {}),
    ]
    train, held, held_family = list(standards), [], []
    pool = list(standards)  # training curves of the base families: what perturbations and mixtures are built from
    for family, count in FAMILY_SIZES.items():
        drawn = _draw_family(family, count, rng, pool)
        if family == HELD_OUT_FAMILY:
            held_family = drawn
            continue
        order = rng.permutation(len(drawn))
        n_held = max(1, round(HELD_OUT_SHARE * len(drawn)))
        held += [drawn[j] for j in sorted(order[:n_held])]
        kept = [drawn[j] for j in sorted(order[n_held:])]
        train += kept
        if family in BASE_FAMILIES:
            pool += kept
    return CurveBank(tuple(train), tuple(held + held_family), seed, BANK_VERSION)


# ----------------------------------------------------------------------------------------------------------------------
# The inverse PCA basis.


@dataclass(frozen=True)
class InverseResponseBasis:
    """An EMoR-style inverse-response model: curve = increase(g0 + components @ w), w ∈ R^k.

    ``grid``, ``g0``: (1024,) float64 on [0, 1]; ``components``: (1024, k) float64. ``source`` says where it came from
    (the project's committed asset or a user's invemor.txt path), ``sha256`` the file's hash, ``generator`` the
    generator version / seed (project basis) or "EMoR (Grossberg & Nayar 2004)" (official file), and
    ``explained_variance`` the share of training-curve variance the k components explain (empty when unknown).
    """

    grid: np.ndarray = field(repr=False)
    g0: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    source: str = ""
    sha256: str = ""
    generator: str = ""
    explained_variance: float = float("nan")

    @property
    def k(self) -> int:
        return self.components.shape[1]

    def curve(self, weights: np.ndarray) -> np.ndarray:
        """Inverse curves from weights (..., k) → (..., 1024), after the monotone fix."""
        return increase(self.g0 + np.asarray(weights, dtype=np.float64) @ self.components.T)

    def project(self, inverse_curves: np.ndarray) -> np.ndarray:
        """Least-squares weights (..., k) of inverse curves (..., 1024) (the components are orthonormal)."""
        return (np.asarray(inverse_curves, dtype=np.float64) - self.g0) @ self.components


def read_invemor(path: str | Path, k: int = 11) -> InverseResponseBasis:
    """Parse an official EMoR ``invemor.txt`` (blocks ``B =``, ``g0 =``, ``hinv(1)=`` … each 1024 floats)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such file (expected the EMoR inverse basis invemor.txt)")
    raw = path.read_bytes()
    blocks: dict[str, list[float]] = {}
    current = None
    try:
        for line in raw.decode("ascii").splitlines():
            if "=" in line:
                current = line.split("=")[0].strip()
                blocks[current] = []
                rest = line.split("=", 1)[1].split()
            else:
                rest = line.split()
            if rest:
                if current is None:
                    raise ValueError("numbers before the first block header")
                blocks[current] += [float(v) for v in rest]
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZooError(f"{path}: not an EMoR invemor.txt file ({exc})") from None
    names = ["B", "g0"] + [f"hinv({i})" for i in range(1, k + 1)]
    for name in names:
        if name not in blocks:
            raise ZooError(f"{path}: block {name!r} missing; expected B, g0, hinv(1..{k}) of {SAMPLES} values each")
        if len(blocks[name]) != SAMPLES:
            raise ZooError(f"{path}: block {name!r} has {len(blocks[name])} values, expected {SAMPLES}")
    components = np.stack([blocks[f"hinv({i})"] for i in range(1, k + 1)], axis=1)
    return InverseResponseBasis(
        grid=np.asarray(blocks["B"]),
        g0=np.asarray(blocks["g0"]),
        components=components,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        generator="EMoR (Grossberg & Nayar 2004)",
    )


def fit_basis(inverse_curves: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of inverse curves (N, 1024): the mean g0 (1024,), the first k right-singular vectors H (1024, k) with a sign
    convention (each component's largest-magnitude entry is positive, so reruns agree), and the cumulative
    explained-variance share of 1..k components (k,)."""
    g0 = inverse_curves.mean(axis=0)
    _, s, vt = np.linalg.svd(inverse_curves - g0, full_matrices=False)
    h = vt[:k].T
    h = h * np.sign(h[np.abs(h).argmax(axis=0), np.arange(k)])
    return g0, h, np.cumsum(s[:k] ** 2) / (s**2).sum()


@lru_cache(maxsize=4)
def _project_basis(k: int) -> InverseResponseBasis:
    """The committed project basis (rows: grid, g0, h1..h25), checked against ``BASIS_SHA256``."""
    if not ASSET.is_file():
        raise ZooError(f"{ASSET}: the project's response basis is missing; run python -m zoo.data.make_basis")
    raw = ASSET.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BASIS_SHA256:
        raise ZooError(f"{ASSET}: sha256 {digest[:12]}… differs from the committed {BASIS_SHA256[:12]}…")
    rows = np.load(ASSET, allow_pickle=False)
    info = json.loads(ASSET.with_suffix(".json").read_text())
    if k > rows.shape[0] - 2:
        raise ZooError(f"{ASSET}: holds {rows.shape[0] - 2} components, {k} requested")
    return InverseResponseBasis(
        grid=rows[0].copy(),
        g0=rows[1].copy(),
        components=np.ascontiguousarray(rows[2 : 2 + k].T),
        source=str(ASSET),
        sha256=digest,
        generator=f"zoo.data.make_basis v{info['generator_version']} (bank seed {info['bank_seed']}, "
        f"bank v{info['bank_version']})",
        explained_variance=float(info["explained_variance"][k - 1]),
    )


def load_inverse_basis(path: str | None = None, k: int = 11) -> InverseResponseBasis:
    """The inverse-response basis with ``k`` components: the project's own (``path=None``) or an official
    ``invemor.txt`` (needed by the official SingleHDR weights; its sha256 is in ``.sha256``, compare it with
    ``OFFICIAL_INVEMOR_SHA256``)."""
    if not 1 <= k <= 25:
        raise ZooError(f"inverse basis: k must be in 1..25, got {k}")
    if path is None:
        return _project_basis(k)
    return read_invemor(path, k)
