"""Rendering of a synthetic scene: each polygon filled with a class-specific texture, then global lighting.

Colours are drawn from palettes that overlap between classes (green cars and green hedges, grey walls,
roads and buildings, white trucks and overcast sky), so colour alone does not tell the class; what does is
the pattern (windows, tiles, lattices, wheels, leaves), the shape and the place in the street.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from data.synthetic.scene import SceneObject

Texture = Callable[[np.random.Generator, int, int, dict], np.ndarray]

GREYS = np.array(
    [[70, 70, 72], [105, 104, 100], [128, 126, 122], [150, 148, 140], [170, 168, 160], [95, 100, 105]],
    dtype=np.float32,
)
EARTH = np.array(
    [[150, 120, 90], [180, 150, 110], [120, 95, 70], [200, 180, 150], [160, 90, 70]], dtype=np.float32
)
GREENS = np.array(
    [[60, 90, 40], [85, 115, 50], [110, 130, 60], [70, 100, 70], [130, 125, 60]], dtype=np.float32
)
PAINT = np.array(
    [
        [200, 30, 30],
        [30, 60, 160],
        [230, 230, 225],
        [20, 20, 22],
        [150, 150, 155],
        [60, 110, 60],
        [200, 160, 40],
        [110, 30, 40],
        [90, 130, 170],
        [180, 180, 170],
    ],
    dtype=np.float32,
)
SKIN = np.array([[225, 190, 160], [190, 140, 110], [140, 95, 70], [90, 60, 45]], dtype=np.float32)


# ---------------------------------------------------------------- building blocks


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 18.0) -> np.ndarray:
    return palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3).astype(np.float32)


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [-1, 1] with features about `cell` pixels wide (bilinear upsampled random grid)."""
    gh, gw = max(2, int(h / max(cell, 1.0)) + 2), max(2, int(w / max(cell, 1.0)) + 2)
    grid = Image.fromarray(rng.uniform(-1, 1, (gh, gw)).astype(np.float32), mode="F")
    return np.asarray(grid.resize((w, h), Image.BILINEAR), dtype=np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (h, 1) and column (1, w) coordinates; they broadcast to (h, w) where combined."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _flat(color: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.broadcast_to(color.astype(np.float32), (h, w, 3)).copy()


def _shade(img: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A linear light gradient across the object, so its colour is not constant."""
    h, w = img.shape[:2]
    yy, xx = _grid(h, w)
    a, b = rng.uniform(-strength, strength, 2)
    g = 1.0 + a * (yy / max(h - 1, 1) - 0.5) + b * (xx / max(w - 1, 1) - 0.5)
    return img * g[..., None]


def _stripes(coord: np.ndarray, period: float, duty: float) -> np.ndarray:
    return np.mod(coord, max(period, 1.0)) < duty * max(period, 1.0)


def _mix(base: np.ndarray, other: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None], other, base)


# ---------------------------------------------------------------- textures per class


def _asphalt(rng, h, w, hint):
    base = _pick(rng, GREYS[:4], 12)
    img = _flat(base, h, w) + 10 * _noise(rng, h, w, 2)[..., None] + 8 * _noise(rng, h, w, 30)[..., None]
    return _shade(img, rng, 0.3)


def _road(rng, h, w, hint):
    img = _asphalt(rng, h, w, hint)
    if rng.random() < 0.7:  # dashed lane marking down the middle of the bounding box
        yy, xx = _grid(h, w)
        centre = w * rng.uniform(0.4, 0.6)
        half = 0.1 + 0.012 * yy
        dash = _stripes(np.sqrt(yy + 1) * 6, 4, 0.5)
        img = _mix(img, _flat(np.array([215, 215, 205]), h, w), (np.abs(xx - centre) < half) & dash)
    return img


def _tiles(rng, h, w, hint):
    """Sidewalk and parking: paving tiles whose joints differ from the asphalt of the road."""
    base = _pick(rng, np.vstack([GREYS, EARTH[:2]]), 14)
    yy, xx = _grid(h, w)
    p = max(3.0, hint.get("scale", 30) * rng.uniform(0.3, 0.6))
    joints = _stripes(xx + 0.5 * yy, p, 0.15) | _stripes(yy, p * 0.6, 0.15)
    img = _mix(_flat(base, h, w) + 6 * _noise(rng, h, w, 2)[..., None], _flat(base * 0.7, h, w), joints)
    return _shade(img, rng)


def _rails(rng, h, w, hint):
    img = _flat(_pick(rng, EARTH, 10) * 0.7, h, w) + 12 * _noise(rng, h, w, 2)[..., None]
    yy, xx = _grid(h, w)
    sleepers = _stripes(np.sqrt(yy + 1) * 8, 3, 0.4)
    rails = (np.abs(xx / max(w - 1, 1) - 0.5) > 0.3) & (np.abs(xx / max(w - 1, 1) - 0.5) < 0.36)
    img = _mix(img, _flat(np.array([90, 70, 55]), h, w), sleepers)
    return _mix(img, _flat(np.array([185, 185, 190]), h, w), rails)


def _building(rng, h, w, hint):
    base = _pick(rng, np.vstack([GREYS, EARTH]), 16)
    img = _flat(base, h, w) + 6 * _noise(rng, h, w, 3)[..., None]
    yy, xx = _grid(h, w)
    p = max(4.0, hint.get("scale", 20) * rng.uniform(2.0, 3.5))
    windows = _stripes(xx, p, 0.45) & _stripes(yy, p * 1.1, 0.5)
    glass = _pick(rng, np.array([[40, 50, 60], [120, 140, 160], [200, 200, 190]]), 10)
    return _shade(_mix(img, _flat(glass, h, w), windows), rng, 0.35)


def _wall(rng, h, w, hint):
    base = _pick(rng, np.vstack([GREYS, EARTH]), 14)
    img = _flat(base, h, w) + 18 * _noise(rng, h, w, 12)[..., None]  # stains
    yy, xx = _grid(h, w)
    p = max(3.0, hint.get("scale", 20) * 0.25)
    if rng.random() < 0.6:  # brick courses
        img = _mix(img, _flat(base * 0.75, h, w), _stripes(yy, p, 0.18))
    return _shade(img, rng)


def _fence(rng, h, w, hint):
    """A lattice: slats in the fence colour over a darker see-through background."""
    base = _pick(rng, np.vstack([GREYS, EARTH, GREENS[:2]]), 16)
    back = _flat(_pick(rng, GREENS, 10) * 0.6, h, w) + 15 * _noise(rng, h, w, 4)[..., None]
    yy, xx = _grid(h, w)
    p = max(2.5, hint.get("scale", 20) * 0.15)
    slats = _stripes(xx + yy, p, 0.35) | _stripes(xx - yy, p, 0.35)
    return _shade(_mix(back, _flat(base, h, w), slats | (yy < 2)), rng)


def _guard_rail(rng, h, w, hint):
    yy, _ = _grid(h, w)
    img = _flat(np.array([175, 175, 180]), h, w)
    return _shade(_mix(img, img * 0.6, _stripes(yy, max(2.0, h / 3), 0.3)), rng, 0.4)


def _concrete(rng, h, w, hint):
    return _shade(_flat(_pick(rng, GREYS, 10), h, w) + 12 * _noise(rng, h, w, 6)[..., None], rng, 0.4)


def _pole(rng, h, w, hint):
    base = _pick(rng, np.vstack([GREYS, [[60, 80, 60]]]), 10)
    _, xx = _grid(h, w)
    cyl = 0.6 + 0.7 * np.sin(np.pi * (xx + 0.5) / max(w, 1))  # cylinder shading across the width
    return _flat(base, h, w) * cyl[..., None]


def _traffic_light(rng, h, w, hint):
    img = _flat(_pick(rng, np.array([[30, 30, 30], [60, 70, 50], [200, 170, 30]]), 8), h, w)
    yy, xx = _grid(h, w)
    lit = rng.integers(3)
    for k, color in enumerate(([230, 40, 30], [240, 180, 30], [40, 220, 90])):
        cy = h * (k + 0.5) / 3
        lamp = (yy - cy) ** 2 + (xx - w / 2) ** 2 < (0.33 * min(w, h / 3)) ** 2
        c = np.array(color, dtype=np.float32) * (1.0 if k == lit else 0.25)
        img = _mix(img, _flat(c, h, w), lamp)
    return img


def _traffic_sign(rng, h, w, hint):
    face = _pick(rng, np.array([[230, 230, 230], [30, 70, 180], [220, 40, 40], [240, 200, 30]]), 8)
    img = _flat(face, h, w)
    yy, xx = _grid(h, w)
    r = ((yy - h / 2) / max(h / 2, 1)) ** 2 + ((xx - w / 2) / max(w / 2, 1)) ** 2
    img = _mix(img, _flat(255 - face, h, w), (r > 0.55) & (r < 0.8))  # a ring or border
    return _shade(img, rng, 0.2)


def _leaves(rng, h, w, hint):
    """Vegetation: blotchy leaves; mostly green, sometimes autumn-coloured (so it overlaps terrain/earth)."""
    if hint.get("trunk"):
        return _shade(
            _flat(_pick(rng, EARTH[2:3], 10) * 0.7, h, w) + 10 * _noise(rng, h, w, 2)[..., None], rng
        )
    base = _pick(rng, GREENS if rng.random() < 0.8 else EARTH, 16)
    blotch = _noise(rng, h, w, 3) + 0.6 * _noise(rng, h, w, 9)
    img = _flat(base, h, w) * (1.0 + 0.35 * blotch)[..., None]
    return _shade(img, rng, 0.35)


def _grass(rng, h, w, hint):
    """Terrain: fine grain and streaks, green or dry brown."""
    base = _pick(rng, np.vstack([GREENS, EARTH[:3]]), 14)
    yy, xx = _grid(h, w)
    streak = np.sin(xx * 0.9 + 3 * _noise(rng, h, w, 8)) * 0.08
    img = _flat(base, h, w) * (1.0 + streak + 0.12 * _noise(rng, h, w, 1.5))[..., None]
    return _shade(img, rng)


def _sky(rng, h, w, hint):
    """Blue or overcast; bright at the horizon, soft clouds."""
    top = _pick(rng, np.array([[90, 140, 200], [170, 180, 190], [215, 215, 220], [130, 160, 200]]), 12)
    yy, _ = _grid(h, w)
    g = (yy / max(h - 1, 1))[..., None]
    img = top * (1 - g) + np.minimum(top * 1.25, 250) * g
    return img + 20 * np.clip(_noise(rng, h, w, 25), 0, 1)[..., None]


def _person(rng, h, w, hint):
    """Head (skin), shirt and trousers from shared paint/earth palettes."""
    img = _flat(_pick(rng, np.vstack([PAINT, EARTH]), 20), h, w)
    yy, _ = _grid(h, w)
    img = _mix(img, _flat(_pick(rng, np.vstack([GREYS, PAINT[:5]]), 14), h, w), yy > h * 0.5)
    img = _mix(img, _flat(_pick(rng, SKIN, 10), h, w), yy < h * 0.13)
    return _shade(img, rng, 0.3) + 8 * _noise(rng, h, w, 2)[..., None]


def _vehicle_body(rng, h, w, hint):
    """Painted body, darker glazing in the upper part, wheels or bumper below, glossy gradient."""
    body = _pick(rng, PAINT, 14)
    img = _flat(body, h, w)
    yy, xx = _grid(h, w)
    glass = _flat(_pick(rng, np.array([[40, 45, 55], [90, 105, 120]]), 8), h, w)
    if hint.get("side"):
        p = max(3.0, hint.get("scale", 20) * 1.2)
        windows = (yy > h * 0.1) & (yy < h * 0.4) & _stripes(xx, p, 0.75)
    else:
        windows = (yy > h * 0.1) & (yy < h * 0.42) & (np.abs(xx - w / 2) < w * 0.36)
    img = _mix(img, glass, windows)
    img = _mix(img, _flat(np.array([25, 25, 28]), h, w), yy > h * 0.88)
    return _shade(img, rng, 0.45) + 5 * _noise(rng, h, w, 2)[..., None]


def _two_wheeler(rng, h, w, hint):
    """Dark frame and tyres, with spoke-like rings; motorcycles get a painted tank."""
    img = _flat(_pick(rng, np.vstack([GREYS[:2], PAINT]), 10) * 0.6, h, w)
    yy, xx = _grid(h, w)
    r = np.sqrt((yy - h * 0.7) ** 2 + (np.minimum(np.abs(xx - w * 0.22), np.abs(xx - w * 0.78))) ** 2)
    img = _mix(img, _flat(np.array([15, 15, 15]), h, w), _stripes(r, max(2.0, h / 6), 0.4))
    return _shade(img, rng, 0.3)


def _plate(rng, h, w, hint):
    img = _flat(_pick(rng, np.array([[235, 235, 230], [240, 210, 40]]), 6), h, w)
    _, xx = _grid(h, w)
    return _mix(img, _flat(np.array([20, 20, 20]), h, w), _stripes(xx, max(2.0, w / 7), 0.3))


def _dark(rng, h, w, hint):
    return (
        _flat(_pick(rng, np.array([[15, 15, 18], [30, 28, 26]]), 4), h, w)
        + 4 * _noise(rng, h, w, 2)[..., None]
    )


def _hood(rng, h, w, hint):
    img = _flat(_pick(rng, PAINT, 8) * 0.5, h, w)
    yy, xx = _grid(h, w)
    glare = np.exp(-(((xx - w * rng.uniform(0.3, 0.7)) / (w * 0.15)) ** 2)) * 40
    return img + glare[..., None] * (1 - yy / max(h, 1))[..., None]


def _clutter(rng, h, w, hint):
    return _shade(_flat(_pick(rng, np.vstack([PAINT, EARTH, GREYS]), 20), h, w), rng, 0.4)


TEXTURES: dict[str, Texture] = {
    "road": _road,
    "ground": _asphalt,
    "sidewalk": _tiles,
    "parking": _tiles,
    "rail track": _rails,
    "building": _building,
    "wall": _wall,
    "fence": _fence,
    "guard rail": _guard_rail,
    "bridge": _concrete,
    "tunnel": _concrete,
    "pole": _pole,
    "polegroup": _pole,
    "traffic light": _traffic_light,
    "traffic sign": _traffic_sign,
    "vegetation": _leaves,
    "terrain": _grass,
    "sky": _sky,
    "person": _person,
    "persongroup": _person,
    "rider": _person,
    "car": _vehicle_body,
    "cargroup": _vehicle_body,
    "truck": _vehicle_body,
    "bus": _vehicle_body,
    "train": _vehicle_body,
    "caravan": _vehicle_body,
    "trailer": _vehicle_body,
    "motorcycle": _two_wheeler,
    "bicycle": _two_wheeler,
    "license plate": _plate,
    "ego vehicle": _hood,
    "out of roi": _dark,
    "rectification border": _dark,
    "static": _clutter,
    "dynamic": _clutter,
}


# ---------------------------------------------------------------- the frame


def owner_map(polygons: list[list[tuple[int, int]]], h: int, w: int) -> np.ndarray:
    """int32 (h, w): 1 + index of the polygon that owns each pixel (0 where none), drawn in order with
    the same Pillow polygon fill that cityscapesScripts uses for the label images."""
    img = Image.new("I", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for k, poly in enumerate(polygons):
        draw.polygon([tuple(p) for p in poly], fill=k + 1)
    return np.asarray(img, dtype=np.int32)


def render(
    rng: np.random.Generator,
    objects: list[SceneObject],
    polygons: list[list[tuple[int, int]]],
    h: int,
    w: int,
) -> np.ndarray:
    """uint8 RGB image: each object's texture inside the pixels it owns, then lighting and sensor noise."""
    owner = owner_map(polygons, h, w)
    img = np.zeros((h, w, 3), dtype=np.float32)
    for k, (obj, poly) in enumerate(zip(objects, polygons, strict=True)):
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        x0, x1 = max(min(xs), 0), min(max(xs), w - 1) + 1
        y0, y1 = max(min(ys), 0), min(max(ys), h - 1) + 1
        if x1 <= x0 or y1 <= y0:
            continue
        mine = owner[y0:y1, x0:x1] == k + 1
        if not mine.any():
            continue
        tex = TEXTURES[obj.label](rng, y1 - y0, x1 - x0, obj.hint)
        np.copyto(img[y0:y1, x0:x1], np.broadcast_to(tex, (y1 - y0, x1 - x0, 3)), where=mine[..., None])
    return _lighting(rng, img)


def _lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Per-frame exposure, colour cast, a light gradient and sensor noise."""
    h, w = img.shape[:2]
    yy, xx = _grid(h, w)
    gain = rng.uniform(0.6, 1.3)
    tint = 1.0 + rng.normal(0, 0.07, 3).astype(np.float32)
    a, b = rng.uniform(-0.3, 0.3, 2)
    light = gain * (1.0 + a * (xx / w - 0.5) + b * (yy / h - 0.5))
    img *= (light[..., None] * tint).astype(np.float32)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(2, 7))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
