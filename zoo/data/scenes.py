"""Procedural linear HDR scenes: a reproducible, file-free source of training and evaluation content.

A scene is drawn from a generator (``draw_scene``) as a list of analytic layers on a virtual canvas (height 1, width
``aspect``): a sky or wall background, textured surfaces with hard edges and deep shadows, and light sources far
above the background (sun with halo, lamps, windows, specular glints). ``render`` evaluates any window of the canvas at
any pixel resolution, so a training patch costs only its own pixels. Radiance spans 4–6 decades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Scene:
    """A drawn scene: ``aspect`` (canvas width / height) and a list of (kind, parameters) layers applied in order."""

    aspect: float
    layers: tuple[tuple[str, dict], ...] = field(repr=False)


def _colour(rng: np.random.Generator, saturation: float) -> np.ndarray:
    base = np.ones(3) + rng.normal(0.0, saturation, 3)
    return np.clip(base, 0.05, None) / np.clip(base, 0.05, None).mean()


def draw_scene(rng: np.random.Generator, aspect: float = 1.5) -> Scene:
    """Draw a random scene layout (cheap: a few hundred scalars)."""
    layers: list[tuple[str, dict]] = []
    outdoor = rng.random() < 0.5
    if outdoor:
        layers.append(
            (
                "sky",
                {
                    "zenith": np.array([0.25, 0.45, 1.0]) * rng.uniform(0.3, 1.0),
                    "horizon": np.array([1.0, 0.95, 0.85]) * rng.uniform(0.8, 2.0),
                    "horizon_y": rng.uniform(0.45, 0.8),
                },
            )
        )
    else:
        layers.append(("flat", {"colour": _colour(rng, 0.15) * 10 ** rng.uniform(-1.5, -0.5)}))
    for _ in range(rng.integers(2, 6)):
        layers.append(
            (
                "surface",
                {
                    "box": np.sort(rng.uniform(0, 1, 2)).tolist() + np.sort(rng.uniform(0.2, 1.2, 2)).tolist(),
                    "albedo": _colour(rng, 0.3) * rng.uniform(0.05, 0.8),
                    "light": 10 ** rng.uniform(-3.0, 0.3),
                    "freq": rng.uniform(2, 40, (4, 2)) * rng.choice([-1, 1], (4, 2)),
                    "phase": rng.uniform(0, 2 * np.pi, 4),
                    "contrast": rng.uniform(0.1, 0.8),
                },
            )
        )
    n_lights = rng.integers(1, 5)
    for _ in range(n_lights):
        kind = rng.choice(["sun", "lamp", "window", "glints"], p=[0.25 if outdoor else 0.05, 0.35, 0.25, 0.35 - (0.2 if outdoor else 0.0)])
        centre = rng.uniform([0.0, 0.0], [aspect, 1.0])
        params = {
            "centre": centre,
            "colour": _colour(rng, 0.2),
            "intensity": 10 ** rng.uniform(1.0, 3.5),
        }
        if kind == "sun" or kind == "lamp":
            params["radius"] = rng.uniform(0.01, 0.06)
            params["halo"] = rng.uniform(0.0, 0.05)
        elif kind == "window":
            params["size"] = rng.uniform(0.05, 0.3, 2)
            params["bars"] = int(rng.integers(1, 4))
            params["intensity"] = 10 ** rng.uniform(0.5, 2.0)
        else:
            params["count"] = int(rng.integers(3, 12))
            params["spread"] = rng.uniform(0.05, 0.3)
            params["offsets"] = rng.normal(0, 1, (12, 2))
            params["sizes"] = rng.uniform(0.002, 0.01, 12)
        layers.append((str(kind), params))
    return Scene(aspect, tuple(layers))


def render(scene: Scene, height: int, width: int, window: tuple[float, float, float] | None = None) -> np.ndarray:
    """Render ``scene`` as an H×W×3 float32 linear image (values > 0).

    ``window`` = (x0, y0, size): the canvas square/rectangle whose top-left is (x0, y0) and whose height is ``size``
    canvas units (None: the whole canvas, height 1, width ``aspect``).
    """
    x0, y0, size = window if window is not None else (0.0, 0.0, 1.0)
    pixel = size / height
    xs = (x0 + (np.arange(width, dtype=np.float32) + 0.5) * pixel)[None, :]
    ys = (y0 + (np.arange(height, dtype=np.float32) + 0.5) * pixel)[:, None]
    image = np.zeros((height, width, 3), dtype=np.float32)
    for kind, p in scene.layers:
        if kind == "sky":
            t = np.clip(ys / p["horizon_y"], 0, 1) ** 2
            image[:] = (p["zenith"] * (1 - t)[..., None] + p["horizon"] * t[..., None]).astype(np.float32)
        elif kind == "flat":
            image[:] = p["colour"].astype(np.float32)
        elif kind == "surface":
            x_lo, x_hi = p["box"][0] * scene.aspect, p["box"][1] * scene.aspect
            y_lo, y_hi = p["box"][2], p["box"][3]
            mask = (np.clip((xs - x_lo) / pixel + 0.5, 0, 1) * np.clip((x_hi - xs) / pixel + 0.5, 0, 1)) * (
                np.clip((ys - y_lo) / pixel + 0.5, 0, 1) * np.clip((y_hi - ys) / pixel + 0.5, 0, 1)
            )
            texture = sum(
                np.sin(f[0] * xs + f[1] * ys + ph) for f, ph in zip(p["freq"], p["phase"], strict=True)
            )
            value = (p["light"] * np.exp(p["contrast"] * texture))[..., None] * p["albedo"].astype(np.float32)
            image += mask[..., None] * (value - image)
        elif kind in ("sun", "lamp"):
            d = np.sqrt((xs - p["centre"][0]) ** 2 + (ys - p["centre"][1]) ** 2)
            core = np.clip((p["radius"] - d) / pixel + 0.5, 0, 1) * (1 - 0.3 * (d / p["radius"]) ** 2)
            halo = p["halo"] ** 2 / (p["halo"] ** 2 + d**2) if p["halo"] > 0 else 0.0
            image += ((p["intensity"] * core + 0.1 * p["intensity"] * halo * p["radius"] / max(p["halo"], 1e-3))[..., None]
                      * p["colour"].astype(np.float32))
        elif kind == "window":
            dx = np.abs(xs - p["centre"][0]) / p["size"][0]
            dy = np.abs(ys - p["centre"][1]) / p["size"][1]
            inside = np.clip((1 - dx) * p["size"][0] / pixel, 0, 1) * np.clip((1 - dy) * p["size"][1] / pixel, 0, 1)
            bars = np.abs(np.sin(np.pi * (p["bars"] + 1) * (xs - p["centre"][0] + p["size"][0]) / (2 * p["size"][0])))
            glass = inside * np.clip(bars * 8 - 0.5, 0, 1) * (1 + 0.2 * (ys - p["centre"][1]) / p["size"][1])
            image += (p["intensity"] * glass)[..., None] * p["colour"].astype(np.float32)
        elif kind == "glints":
            for j in range(p["count"]):
                cx, cy = p["centre"] + p["spread"] * p["offsets"][j]
                r2 = (xs - cx) ** 2 + (ys - cy) ** 2
                image += (p["intensity"] * np.exp(-r2 / p["sizes"][j] ** 2))[..., None] * p["colour"].astype(
                    np.float32
                )
    return np.maximum(image, 1e-6)
