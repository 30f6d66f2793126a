"""Procedural linear HDR scenes: a reproducible, file-free source of training and evaluation content.

``draw_scene(rng, aspect)`` draws a layout of analytic layers on a virtual canvas (height 1, width ``aspect``);
``render(scene, h, w, window)`` evaluates any window of that canvas at any pixel resolution, so a 64×64 training patch
costs only its own pixels (about a millisecond) and a scene is reproducible from the generator's seed alone.

Content is chosen to make both halves of single-image HDR reconstruction necessary:
- structured highlights far above the clipping level: a sun with limb darkening and a glare gradient, lamps with a
  hot filament core inside a glowing shade, windows that show a bright outdoor view (sky gradient, clouds, branches)
  behind mullions, specular glints and coloured neon strips;
- dark, textured regions that 8-bit quantisation and sensor noise destroy: deep shadows (×0.003–0.1), dim rooms,
  value-noise, tile and wood textures, hard edges;
- smooth sky gradients with clouds (banding after quantisation).
Radiance (linear, relative: a lit surface ≈ 0.1–1) spans 4–6 decades from shadowed texture to light sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

WARM = np.array([1.0, 0.62, 0.32])  # ≈ 2700 K tungsten, relative to daylight white
DAYLIGHT = np.array([1.0, 0.97, 0.92])
SKY_BLUE = np.array([0.35, 0.55, 1.0])


@dataclass(frozen=True)
class Layer:
    """One analytic layer: ``kind`` selects the renderer, ``params`` hold its drawn parameters (canvas units)."""

    kind: str
    params: dict = field(repr=False)


@dataclass(frozen=True)
class Scene:
    """A drawn scene. ``anchors``: centres (x, y) of its light sources, used to aim training windows at highlights."""

    aspect: float
    layers: tuple[Layer, ...]
    anchors: tuple[tuple[float, float], ...]


class Canvas:
    """Pixel-centre coordinates of a window of the canvas: ``xs`` (W,) and ``ys`` (H,) float32, pixel size ``pixel``."""

    def __init__(self, height: int, width: int, x0: float, y0: float, extent: float):
        self.pixel = extent / height
        self.xs = (x0 + (np.arange(width, dtype=np.float32) + 0.5) * self.pixel).astype(np.float32)
        self.ys = (y0 + (np.arange(height, dtype=np.float32) + 0.5) * self.pixel).astype(np.float32)

    def box(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> tuple[slice, slice] | None:
        """Row/column slices of the pixels inside a canvas-unit box (None if empty), so small layers cost little."""
        c0, c1 = np.searchsorted(self.xs, [x_lo, x_hi])
        r0, r1 = np.searchsorted(self.ys, [y_lo, y_hi])
        if c1 <= c0 or r1 <= r0:
            return None
        return slice(int(r0), int(r1)), slice(int(c0), int(c1))


# ----------------------------------------------------------------------------------------------------------------------
# Building blocks, all vectorised over a (rows, cols) grid given as ys[:, None], xs[None, :].


def _ramp(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """Anti-aliased inside-mask from a signed distance (positive inside), one pixel wide."""
    return np.clip(signed_distance / pixel + 0.5, 0.0, 1.0)


def value_noise(lattice: np.ndarray, xs: np.ndarray, ys: np.ndarray, cell: float) -> np.ndarray:
    """Smooth value noise: the random ``lattice`` (gh, gw) placed with spacing ``cell`` canvas units (wrapping),
    interpolated with smoothstep weights at ys × xs. Returns (len(ys), len(xs)) float32."""
    gh, gw = lattice.shape
    fx, fy = xs / np.float32(cell), ys / np.float32(cell)
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = fx - ix, fy - iy
    tx, ty = (tx * tx * (3 - 2 * tx))[None, :], (ty * ty * (3 - 2 * ty))[:, None]
    rows = lattice[iy % gh] * (1 - ty) + lattice[(iy + 1) % gh] * ty  # (H, gw): interpolate along y first
    return (rows[:, ix % gw] * (1 - tx) + rows[:, (ix + 1) % gw] * tx).astype(np.float32, copy=False)


def fbm(octaves: list[tuple[np.ndarray, float, float]], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Sum of value-noise octaves (lattice, cell size, amplitude). Octaves whose cells are smaller than two pixels
    are skipped: they would only alias (and cost time)."""
    out = np.zeros((len(ys), len(xs)), dtype=np.float32)
    pixel = float(xs[1] - xs[0]) if len(xs) > 1 else float(ys[1] - ys[0]) if len(ys) > 1 else 0.0
    for lattice, cell, amplitude in octaves:
        if cell >= 2 * pixel:
            out += np.float32(amplitude) * value_noise(lattice, xs, ys, cell)
    return out


def _draw_octaves(rng: np.random.Generator, coarsest: float, count: int, decay: float = 0.55) -> list:
    """fBm octaves: cell sizes halve from ``coarsest``, amplitudes shrink by ``decay``; lattices 16×16, zero-mean."""
    return [(rng.standard_normal((16, 16)).astype(np.float32), coarsest / 2**o, decay**o) for o in range(count)]


def _colour(rng: np.random.Generator, saturation: float) -> np.ndarray:
    """A random RGB tint with mean 1 (``saturation`` ≈ std of the channels)."""
    c = np.clip(1.0 + rng.normal(0.0, saturation, 3), 0.05, None)
    return (c / c.mean()).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------------
# Layer renderers: each updates ``image`` (H×W×3 float32) in place.


def _sky(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """Sky gradient (brighter towards the horizon and the sun) with bright clouds; ground below the horizon."""
    ys, xs = cv.ys[:, None], cv.xs[None, :]
    t = np.clip(ys / p["horizon"], 0.0, 1.0) ** p["falloff"]
    sun_x, sun_y = p["sun"]
    near_sun = p["sun_glow"] / (1.0 + ((xs - sun_x) ** 2 + (ys - sun_y) ** 2) / 0.05)
    sky = p["zenith"] * (1 - t)[..., None] + p["horizon_colour"] * t[..., None]
    sky = sky * (1.0 + near_sun)[..., None]
    clouds = np.clip(fbm(p["clouds"], cv.xs, cv.ys) - p["cover"], 0.0, None)
    sky = sky + (p["cloud_brightness"] * clouds * (1.0 + near_sun))[..., None] * DAYLIGHT.astype(np.float32)
    image[:] = sky
    ground = _ramp(ys - p["horizon"], cv.pixel)
    texture = np.exp(fbm(p["ground_texture"], cv.xs, cv.ys))
    light = p["ground_light"] * (0.6 + 0.4 * np.clip((ys - p["horizon"]) / (1 - p["horizon"] + 1e-3), 0, 1))
    ground_rgb = (light * texture)[..., None] * p["ground_colour"]
    image += ground[..., None] * (ground_rgb - image)


def _room(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A dim interior: walls lit by a broad fall-off from one point, a floor below a soft line, faint texture."""
    ys, xs = cv.ys[:, None], cv.xs[None, :]
    lx, ly = p["light_at"]
    fall = 1.0 / (1.0 + ((xs - lx) ** 2 + (ys - ly) ** 2) / p["spread"] ** 2)
    texture = np.exp(fbm(p["texture"], cv.xs, cv.ys))
    level = p["level"] * (0.15 + fall) * texture
    wall = level[..., None] * p["wall_colour"]
    floor_mask = _ramp(ys - p["floor"], cv.pixel)
    image[:] = wall + floor_mask[..., None] * (level[..., None] * p["floor_colour"] - wall)


def _surface(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A textured object (rectangle, disc or triangle) with its own illumination, composited over the image."""
    x_lo, x_hi, y_lo, y_hi = p["bounds"]
    sl = cv.box(x_lo - cv.pixel, x_hi + cv.pixel, y_lo - cv.pixel, y_hi + cv.pixel)
    if sl is None:
        return
    xs, ys = cv.xs[sl[1]], cv.ys[sl[0]]
    X, Y = xs[None, :], ys[:, None]
    if p["shape"] == "rect":
        mask = _ramp(np.minimum(X - x_lo, x_hi - X), cv.pixel) * _ramp(np.minimum(Y - y_lo, y_hi - Y), cv.pixel)
    elif p["shape"] == "disc":
        cx, cy, r = (x_lo + x_hi) / 2, (y_lo + y_hi) / 2, (x_hi - x_lo) / 2
        mask = _ramp(r - np.sqrt((X - cx) ** 2 + (Y - cy) ** 2), cv.pixel)
    else:  # triangle: inside all three edges
        (ax, ay), (bx, by), (qx, qy) = p["vertices"]
        d = np.full((len(ys), len(xs)), np.inf, dtype=np.float32)
        for (x1, y1), (x2, y2) in (((ax, ay), (bx, by)), ((bx, by), (qx, qy)), ((qx, qy), (ax, ay))):
            nx, ny = y2 - y1, x1 - x2
            norm = np.hypot(nx, ny) + 1e-9
            d = np.minimum(d, ((X - x1) * nx + (Y - y1) * ny) / norm * p["orientation"])
        mask = _ramp(d, cv.pixel)
    kind = p["texture_kind"]
    if kind == "noise":
        texture = np.exp(p["contrast"] * fbm(p["texture"], xs, ys))
    elif kind == "tiles":
        u, v = (X - x_lo) / p["tile"], (Y - y_lo) / p["tile"]
        grout = np.minimum(np.abs(u - np.round(u)), np.abs(v - np.round(v))) * p["tile"]
        checker = 1.0 + p["contrast"] * ((np.floor(u) + np.floor(v)) % 2 - 0.5)
        lines = 0.25 + 0.75 * _ramp(grout - p["grout"], cv.pixel)
        texture = checker * lines * np.exp(0.3 * fbm(p["texture"], xs, ys))
    else:  # wood-like rings: a sine of warped distance
        warp = fbm(p["texture"], xs, ys)
        rings = np.sin((np.hypot(X - x_lo, (Y - y_lo) * 0.2) / p["tile"] + warp) * 2 * np.pi)
        texture = 1.0 + p["contrast"] * 0.5 * rings
    shade = 1.0 + p["gradient"] * (Y - y_lo) / max(y_hi - y_lo, 1e-3)  # light falling across the object
    value = (p["light"] * texture * shade)[..., None] * p["albedo"]
    region = image[sl]
    region += mask[..., None] * (value - region)


def _shadow(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A soft-edged cast shadow: multiplies everything behind a slanted edge by ``depth`` (deep darks)."""
    ys, xs = cv.ys[:, None], cv.xs[None, :]
    x_lo, x_hi, y_lo, y_hi = p["bounds"]
    edge = (xs - x_lo) - p["slant"] * (ys - y_lo)
    box = _ramp(np.minimum(x_hi - xs, np.minimum(ys - y_lo, y_hi - ys)), cv.pixel)
    inside = np.clip(edge / p["softness"] + 0.5, 0, 1) * box
    image *= (1.0 - (1.0 - p["depth"]) * inside)[..., None]


def _sun(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """Sun or bare bulb: a limb-darkened disc far above white, plus a glare gradient that also clips."""
    cx, cy = p["centre"]
    reach = p["radius"] + 6 * p["glare"]
    sl = cv.box(cx - reach, cx + reach, cy - reach, cy + reach)
    if sl is None:
        return
    X, Y = cv.xs[sl[1]][None, :], cv.ys[sl[0]][:, None]
    d = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    mu = np.sqrt(np.clip(1 - (d / p["radius"]) ** 2, 0, 1))
    disc = _ramp(p["radius"] - d, cv.pixel) * (0.4 + 0.6 * mu)  # limb darkening
    glare = np.exp(-np.maximum(d - p["radius"], 0) / p["glare"])
    value = p["intensity"] * disc + p["glare_level"] * glare
    image[sl] += value[..., None] * p["colour"]


def _lamp(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A lamp: a translucent shade (trapezoid, bright and vertically graded) around a hot elliptic core, with glow."""
    cx, cy = p["centre"]
    w, h = p["size"]
    reach = max(w, h) * 2.5
    sl = cv.box(cx - reach, cx + reach, cy - reach, cy + reach)
    if sl is None:
        return
    X, Y = cv.xs[sl[1]][None, :], cv.ys[sl[0]][:, None]
    v = (Y - cy) / h  # -0.5 top … 0.5 bottom of the shade
    half_width = w * (0.35 + 0.3 * (v + 0.5))  # wider at the bottom
    shade = _ramp(np.minimum(half_width - np.abs(X - cx), (0.5 - np.abs(v)) * h), cv.pixel)
    shade_light = p["shade_level"] * (0.5 + (v + 0.5)) * (1 + 0.15 * np.sin(40 * (X - cx) / w))  # pleats
    core_d = np.sqrt(((X - cx) / (0.12 * w)) ** 2 + ((Y - cy - 0.1 * h) / (0.2 * h)) ** 2)
    core = np.clip(1.0 - core_d, 0.0, 1.0) ** 0.5
    glow = p["glow_level"] / (1.0 + ((X - cx) ** 2 + (Y - cy) ** 2) / (w * w))
    value = shade * shade_light + p["intensity"] * core + glow
    image[sl] += value[..., None] * p["colour"]


def _window(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A window: a bright outdoor view (sky gradient, clouds, dark branches) seen between mullions."""
    cx, cy = p["centre"]
    w, h = p["size"]
    sl = cv.box(cx - w / 2 - cv.pixel, cx + w / 2 + cv.pixel, cy - h / 2 - cv.pixel, cy + h / 2 + cv.pixel)
    if sl is None:
        return
    xs, ys = cv.xs[sl[1]], cv.ys[sl[0]]
    X, Y = xs[None, :], ys[:, None]
    u, v = (X - (cx - w / 2)) / w, (Y - (cy - h / 2)) / h  # 0..1 inside the frame
    inset = np.minimum(np.minimum(X - (cx - w / 2), cx + w / 2 - X), np.minimum(Y - (cy - h / 2), cy + h / 2 - Y))
    frame = _ramp(inset, cv.pixel)
    bar = p["bar"]
    cols, rows = p["panes"]
    du = np.abs(u * cols - np.round(u * cols)) * w / cols
    dv = np.abs(v * rows - np.round(v * rows)) * h / rows
    glass = _ramp(np.minimum(du, dv) - bar / 2, cv.pixel)
    view = p["intensity"] * (1.2 - 0.6 * v)  # brighter at the top of the view
    clouds = np.clip(fbm(p["clouds"], xs, ys) - 0.2, 0, None)
    branches = _ramp(np.abs(fbm(p["branches"], xs, ys)) - p["branch_width"], cv.pixel)  # dark lines where noise ≈ 0
    view = view * (1.0 + p["cloud_gain"] * clouds) * (p["branch_shadow"] + (1 - p["branch_shadow"]) * branches)
    tint = SKY_BLUE.astype(np.float32) * (1 - v[..., None]) + DAYLIGHT.astype(np.float32) * v[..., None]
    rgb = view[..., None] * tint
    mask = (frame * glass)[..., None]
    region = image[sl]
    region += mask * (rgb - region)


def _glints(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """Specular glints: small elongated Gaussian highlights, 10²–10⁴ above the surface they sit on."""
    glints = zip(p["at"], p["sizes"], p["angles"], p["stretch"], p["levels"], strict=True)
    for (gx, gy), size, angle, stretch, level in glints:
        reach = 4 * size * stretch
        sl = cv.box(gx - reach, gx + reach, gy - reach, gy + reach)
        if sl is None:
            continue
        X, Y = cv.xs[sl[1]][None, :] - gx, cv.ys[sl[0]][:, None] - gy
        c, s = np.cos(angle), np.sin(angle)
        a, b = (X * c + Y * s) / (size * stretch), (-X * s + Y * c) / size
        image[sl] += (level * np.exp(-0.5 * (a * a + b * b)))[..., None] * p["colour"]


def _strip(image: np.ndarray, cv: Canvas, p: dict) -> None:
    """A coloured neon strip: a saturated line light with a soft halo."""
    (x1, y1), (x2, y2) = p["ends"]
    reach = p["halo"] * 4
    sl = cv.box(min(x1, x2) - reach, max(x1, x2) + reach, min(y1, y2) - reach, max(y1, y2) + reach)
    if sl is None:
        return
    X, Y = cv.xs[sl[1]][None, :], cv.ys[sl[0]][:, None]
    dx, dy = x2 - x1, y2 - y1
    t = np.clip(((X - x1) * dx + (Y - y1) * dy) / (dx * dx + dy * dy), 0, 1)
    d = np.sqrt((X - x1 - t * dx) ** 2 + (Y - y1 - t * dy) ** 2)
    value = p["intensity"] * _ramp(p["width"] - d, cv.pixel) + p["halo_level"] * np.exp(-d / p["halo"])
    image[sl] += value[..., None] * p["colour"]


RENDERERS: dict[str, Callable[[np.ndarray, Canvas, dict], None]] = {
    "sky": _sky,
    "room": _room,
    "surface": _surface,
    "shadow": _shadow,
    "sun": _sun,
    "lamp": _lamp,
    "window": _window,
    "glints": _glints,
    "strip": _strip,
}


# ----------------------------------------------------------------------------------------------------------------------
# Drawing a scene.


def _draw_surface(rng: np.random.Generator, aspect: float, light: float) -> Layer:
    shape = str(rng.choice(["rect", "rect", "disc", "triangle"]))
    cx, cy = rng.uniform(0, aspect), rng.uniform(0.1, 1.1)
    w, h = rng.uniform(0.08, 0.7, 2)
    if shape == "disc":
        h = w
    p: dict = {
        "shape": shape,
        "bounds": (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2),
        "albedo": (_colour(rng, 0.35) * rng.uniform(0.05, 0.8)).astype(np.float32),
        "light": float(light * 10 ** rng.uniform(-1.5, 0.5)),
        "texture_kind": str(rng.choice(["noise", "noise", "tiles", "wood"])),
        "texture": _draw_octaves(rng, rng.uniform(0.03, 0.3), 4),
        "contrast": float(rng.uniform(0.1, 0.9)),
        "tile": float(rng.uniform(0.02, 0.12)),
        "grout": float(rng.uniform(0.001, 0.006)),
        "gradient": float(rng.uniform(-0.8, 0.8)),
    }
    if shape == "triangle":
        vertices = [(float(cx + rng.uniform(-w, w) / 2), float(cy + rng.uniform(-h, h) / 2)) for _ in range(3)]
        (ax, ay), (bx, by), (qx, qy) = vertices
        p["vertices"] = vertices
        p["orientation"] = 1.0 if (bx - ax) * (qy - ay) - (by - ay) * (qx - ax) < 0 else -1.0
    return Layer("surface", p)


def draw_scene(rng: np.random.Generator, aspect: float = 1.5) -> Scene:
    """Draw a random scene layout on a canvas of height 1 and width ``aspect`` (cheap: a few thousand numbers)."""
    layers: list[Layer] = []
    anchors: list[tuple[float, float]] = []
    outdoor = rng.random() < 0.45
    if outdoor:
        horizon = float(rng.uniform(0.35, 0.8))
        sun = (float(rng.uniform(0, aspect)), float(rng.uniform(-0.1, horizon)))
        sky_level = float(rng.uniform(0.4, 1.5))
        layers.append(
            Layer(
                "sky",
                {
                    "horizon": horizon,
                    "falloff": float(rng.uniform(0.5, 2.5)),
                    "zenith": (SKY_BLUE * sky_level * rng.uniform(0.3, 0.8)).astype(np.float32),
                    "horizon_colour": (_colour(rng, 0.1) * sky_level * rng.uniform(1.0, 2.0)).astype(np.float32),
                    "sun": sun,
                    "sun_glow": float(rng.uniform(0.0, 3.0)),
                    "clouds": _draw_octaves(rng, rng.uniform(0.15, 0.5), 5, 0.5),
                    "cover": float(rng.uniform(-0.2, 1.2)),
                    "cloud_brightness": float(sky_level * rng.uniform(1.0, 6.0)),
                    "ground_texture": _draw_octaves(rng, rng.uniform(0.05, 0.3), 4),
                    "ground_light": float(sky_level * 10 ** rng.uniform(-1.5, -0.3)),
                    "ground_colour": _colour(rng, 0.3),
                },
            )
        )
        surface_light = sky_level * 0.5
        if rng.random() < 0.7:
            layers_sun = Layer(
                "sun",
                {
                    "centre": sun,
                    "radius": float(rng.uniform(0.01, 0.05)),
                    "intensity": float(10 ** rng.uniform(2.0, 3.5)),
                    "glare": float(rng.uniform(0.01, 0.06)),
                    "glare_level": float(sky_level * 10 ** rng.uniform(0.5, 1.8)),
                    "colour": (DAYLIGHT * _colour(rng, 0.05)).astype(np.float32),
                },
            )
            anchors.append(sun)
        else:
            layers_sun = None
    else:
        level = float(10 ** rng.uniform(-1.2, -0.3))
        layers.append(
            Layer(
                "room",
                {
                    "light_at": (float(rng.uniform(0, aspect)), float(rng.uniform(0, 1))),
                    "spread": float(rng.uniform(0.2, 0.8)),
                    "level": level,
                    "texture": _draw_octaves(rng, rng.uniform(0.05, 0.4), 3, 0.4),
                    "wall_colour": (_colour(rng, 0.15) * WARM ** rng.uniform(0, 0.5)).astype(np.float32),
                    "floor_colour": _colour(rng, 0.3),
                    "floor": float(rng.uniform(0.6, 1.1)),
                },
            )
        )
        surface_light = level * 3
        layers_sun = None
        for _ in range(rng.integers(0, 3)):
            w, h = float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.15, 0.5))
            centre = (float(rng.uniform(0, aspect)), float(rng.uniform(0.1, 0.7)))
            layers.append(
                Layer(
                    "window",
                    {
                        "centre": centre,
                        "size": (w, h),
                        "bar": float(rng.uniform(0.004, 0.02)),
                        "panes": (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                        "intensity": float(10 ** rng.uniform(0.8, 2.2)),
                        "clouds": _draw_octaves(rng, rng.uniform(0.05, 0.2), 4, 0.5),
                        "cloud_gain": float(rng.uniform(0.0, 2.0)),
                        "branches": _draw_octaves(rng, rng.uniform(0.05, 0.2), 3, 0.5),
                        "branch_width": float(rng.uniform(0.0, 0.25)),
                        "branch_shadow": float(10 ** rng.uniform(-2.0, -0.5)),
                    },
                )
            )
            anchors.append(centre)
    for _ in range(rng.integers(2, 7)):
        layers.append(_draw_surface(rng, aspect, surface_light))
    for _ in range(rng.integers(0, 3)):
        x_lo = float(rng.uniform(-0.2, aspect))
        y_lo = float(rng.uniform(0.2, 0.9))
        layers.append(
            Layer(
                "shadow",
                {
                    "bounds": (x_lo, x_lo + float(rng.uniform(0.2, 1.0)), y_lo, y_lo + float(rng.uniform(0.2, 0.8))),
                    "slant": float(rng.uniform(-1.5, 1.5)),
                    "softness": float(10 ** rng.uniform(-3, -1.3)),
                    "depth": float(10 ** rng.uniform(-2.0, -0.7)),
                },
            )
        )
    if layers_sun is not None:
        layers.append(layers_sun)
    for _ in range(rng.integers(0 if outdoor else 1, 2 if outdoor else 4)):
        kind = str(rng.choice(["lamp", "lamp", "strip"]))
        if kind == "lamp":
            centre = (float(rng.uniform(0, aspect)), float(rng.uniform(0.05, 0.9)))
            layers.append(
                Layer(
                    "lamp",
                    {
                        "centre": centre,
                        "size": (float(rng.uniform(0.05, 0.25)), float(rng.uniform(0.05, 0.2))),
                        "shade_level": float(10 ** rng.uniform(0.3, 1.5)),
                        "intensity": float(10 ** rng.uniform(1.5, 3.0)),
                        "glow_level": float(10 ** rng.uniform(-0.5, 0.8)),
                        "colour": (WARM ** rng.uniform(0.3, 1.0) * _colour(rng, 0.05)).astype(np.float32),
                    },
                )
            )
        else:
            ends = [(float(rng.uniform(0, aspect)), float(rng.uniform(0, 1))) for _ in range(2)]
            centre = ((ends[0][0] + ends[1][0]) / 2, (ends[0][1] + ends[1][1]) / 2)
            hue = np.zeros(3, dtype=np.float32)
            hue[rng.choice(3, 2, replace=False)] = rng.uniform(0.05, 1.0, 2)
            hue[rng.integers(3)] = 1.0
            layers.append(
                Layer(
                    "strip",
                    {
                        "ends": ends,
                        "width": float(rng.uniform(0.003, 0.012)),
                        "intensity": float(10 ** rng.uniform(1.0, 2.2)),
                        "halo": float(rng.uniform(0.01, 0.05)),
                        "halo_level": float(10 ** rng.uniform(-0.3, 0.7)),
                        "colour": (hue / hue.mean()).astype(np.float32),
                    },
                )
            )
        anchors.append(centre)
    if rng.random() < 0.8:
        n = int(rng.integers(2, 14))
        centre = np.array([rng.uniform(0, aspect), rng.uniform(0.2, 1.0)])
        at = centre + rng.normal(0, rng.uniform(0.02, 0.2), (n, 2))
        layers.append(
            Layer(
                "glints",
                {
                    "at": [tuple(map(float, a)) for a in at],
                    "sizes": [float(v) for v in rng.uniform(0.001, 0.006, n)],
                    "angles": [float(v) for v in rng.uniform(0, np.pi, n)],
                    "stretch": [float(v) for v in rng.uniform(1.0, 4.0, n)],
                    "levels": [float(v) for v in surface_light * 10 ** rng.uniform(1.0, 3.0, n)],
                    "colour": (DAYLIGHT * _colour(rng, 0.05)).astype(np.float32),
                },
            )
        )
        anchors.append((float(centre[0]), float(centre[1])))
    return Scene(float(aspect), tuple(layers), tuple(anchors))


def render(scene: Scene, height: int, width: int, window: tuple[float, float, float] | None = None) -> np.ndarray:
    """Render ``scene`` as an H×W×3 float32 linear image (all values > 0).

    ``window`` = (x0, y0, extent): the canvas region whose top-left corner is (x0, y0) and whose height is ``extent``
    canvas units (its width follows from the pixel aspect); None renders the whole canvas (height 1).
    """
    x0, y0, extent = window if window is not None else (0.0, 0.0, 1.0)
    cv = Canvas(height, width, x0, y0, extent)
    image = np.zeros((height, width, 3), dtype=np.float32)
    for layer in scene.layers:
        RENDERERS[layer.kind](image, cv, layer.params)
    return np.maximum(image, np.float32(1e-5))
