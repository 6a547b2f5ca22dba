"""Layout of one synthetic street scene: a back-to-front list of labelled polygons.

A pinhole camera at height `hc` metres looks down a street towards a vanishing point (vx, yh). A ground
point `X` metres to the side, at image row y, lies at x = vx + X * (y - yh) / hc, and an object standing
there is (y - yh) / hc pixels per metre tall. Rows are written as t = (y - yh) / (h - yh), so t = 1 is the
bottom row and t -> 0 the horizon. Every element is a small function that returns `SceneObject`s; the
caller draws them in list order, so later objects occlude earlier ones, exactly as Cityscapes polygons do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, float]

VOID_LABELS: tuple[str, ...] = ("ego vehicle", "out of roi")
"""Void labels every frame carries (they are never evaluated but must not break anything)."""
SHOWCASE_LABELS: tuple[str, ...] = (
    "static",
    "dynamic",
    "ground",
    "parking",
    "rail track",
    "guard rail",
    "bridge",
    "tunnel",
    "caravan",
    "trailer",
    "polegroup",
    "rectification border",
    "license plate",
    "cargroup",
    "persongroup",
)
"""Rarer ignored labels; each appears by chance, and all of them in the first frame of every split."""


@dataclass
class SceneObject:
    """One annotated polygon; `hint` tells the renderer how to texture it (view, scale in px/m)."""

    label: str
    polygon: list[Point]
    hint: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Camera:
    """The street geometry of one frame."""

    h: int
    w: int
    yh: float  # horizon row
    vx: float  # vanishing point column
    hc: float  # camera height in metres

    def y(self, t: float) -> float:
        return self.yh + t * (self.h - self.yh)

    def scale(self, t: float) -> float:
        """Pixels per metre for an object standing on row t."""
        return t * (self.h - self.yh) / self.hc

    def ground(self, x_m: float, t: float) -> Point:
        return (self.vx + x_m * self.scale(t), self.y(t))

    def upright(self, x_m: float, t: float, z_m: float) -> Point:
        """Image point z_m metres above the ground point (x_m, t)."""
        gx, gy = self.ground(x_m, t)
        return (gx, gy - z_m * self.scale(t))

    def place(self, shape: list[Point], x_m: float, t: float) -> list[Point]:
        """A flat silhouette (lateral metres, height metres) standing at ground point (x_m, t)."""
        gx, gy = self.ground(x_m, t)
        s = self.scale(t)
        return [(gx + x * s, gy - z * s) for x, z in shape]


@dataclass(frozen=True)
class Street:
    """Lateral edges in metres (negative = left): road, sidewalk, verge (terrain) and facades."""

    road: tuple[float, float]
    sidewalk: tuple[float, float]  # outer edges of the left and right sidewalks
    verge: tuple[float, float]  # facade lines; between sidewalk and verge lies terrain


# ---------------------------------------------------------------- silhouettes (metres: lateral, height)


def _box(w: float, h: float, z0: float = 0.0) -> list[Point]:
    return [(-w / 2, z0), (w / 2, z0), (w / 2, z0 + h), (-w / 2, z0 + h)]


def _ellipse(
    cx: float,
    cz: float,
    rx: float,
    rz: float,
    n: int,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
) -> list[Point]:
    pts = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = 1.0 + (rng.uniform(-jitter, jitter) if rng is not None and jitter else 0.0)
        pts.append((cx + rx * r * math.cos(a), cz + rz * r * math.sin(a)))
    return pts


_CAR_REAR = [
    (-0.9, 0.0),
    (0.9, 0.0),
    (0.93, 0.7),
    (0.78, 0.9),
    (0.62, 1.45),
    (-0.62, 1.45),
    (-0.78, 0.9),
    (-0.93, 0.7),
]
_CAR_SIDE = [
    (-2.2, 0.1),
    (2.2, 0.1),
    (2.25, 0.8),
    (1.6, 0.92),
    (0.9, 1.45),
    (-1.1, 1.45),
    (-1.9, 0.95),
    (-2.25, 0.85),
]
_TRUCK_SIDE = [(-3.5, 0.2), (3.5, 0.2), (3.5, 2.2), (2.9, 2.9), (2.0, 2.9), (2.0, 3.5), (-3.5, 3.5)]
_PERSON = [
    (-0.22, 0.0),
    (-0.08, 0.0),
    (0.0, 0.78),
    (0.08, 0.0),
    (0.22, 0.0),
    (0.2, 0.9),
    (0.26, 1.42),
    (0.12, 1.5),
    (0.09, 1.57),
    (0.12, 1.7),
    (0.0, 1.76),
    (-0.12, 1.7),
    (-0.09, 1.57),
    (-0.12, 1.5),
    (-0.26, 1.42),
    (-0.2, 0.9),
]
_RIDER = [
    (-0.25, 0.35),
    (-0.1, 0.35),
    (0.0, 0.9),
    (0.15, 1.45),
    (0.08, 1.52),
    (0.12, 1.68),
    (0.0, 1.76),
    (-0.12, 1.68),
    (-0.1, 1.5),
    (-0.28, 1.0),
    (-0.35, 0.9),
]


def _two_wheeler(length: float, radius: float, height: float) -> list[Point]:
    """Side view of a bicycle or motorcycle as one polygon: two wheels joined by a frame."""
    cx = length / 2 - radius
    rear = [
        (-cx + radius * math.cos(a), radius + radius * math.sin(a))
        for a in np.radians(np.arange(90, 301, 30))
    ]
    front = [
        (cx + radius * math.cos(a), radius + radius * math.sin(a))
        for a in np.radians(np.arange(240, 451, 30))
    ]
    return rear + [(0.0, radius * 0.9)] + front + [(cx * 0.8, height), (-cx * 0.4, height * 0.95)]


# ---------------------------------------------------------------- background: sky, buildings, ground


def _sky(cam: Camera) -> list[SceneObject]:
    return [SceneObject("sky", [(0, 0), (cam.w, 0), (cam.w, cam.yh + 2), (0, cam.yh + 2)])]


def _skyline(rng: np.random.Generator, cam: Camera) -> list[SceneObject]:
    """Distant buildings along the horizon, with gaps that show sky."""
    objs, x = [], -5.0
    while x < cam.w:
        bw = cam.w * rng.uniform(0.05, 0.16)
        if rng.random() < 0.85:
            top = cam.yh - cam.h * rng.uniform(0.06, 0.3)
            objs.append(
                SceneObject(
                    "building",
                    [(x, top), (x + bw, top), (x + bw, cam.yh + 3), (x, cam.yh + 3)],
                    {"scale": cam.h / 256},
                )
            )
        x += bw
    if rng.random() < 0.5:  # a far tree line in front of the skyline
        pts = [(0, cam.yh + 3)] + [
            (cam.w * k / 12, cam.yh - cam.h * rng.uniform(0.01, 0.06)) for k in range(13)
        ]
        objs.append(SceneObject("vegetation", pts + [(cam.w, cam.yh + 3)], {"scale": cam.h / 256}))
    return objs


def _backdrop(cam: Camera, label: str) -> list[SceneObject]:
    """Ground between the horizon and the bottom that facades and streets do not cover."""
    return [
        SceneObject(label, [(0, cam.yh), (cam.w, cam.yh), (cam.w, cam.h), (0, cam.h)], {"scale": cam.h / 256})
    ]


def _facades(rng: np.random.Generator, cam: Camera, x_m: float) -> list[SceneObject]:
    """Buildings (and the odd wall) along one side of the street, seen in perspective."""
    objs, t = [], 0.03
    while t < 2.5:
        t1 = t * rng.uniform(1.25, 1.8)
        height = rng.uniform(6, 22)
        label = "wall" if rng.random() < 0.08 else "building"
        if label == "wall":
            height = rng.uniform(1.5, 3.0)
        if rng.random() < 0.9:
            poly = [
                cam.upright(x_m, t, height),
                cam.upright(x_m, t1, height),
                cam.ground(x_m, t1),
                cam.ground(x_m, t),
            ]
            objs.append(SceneObject(label, poly, {"scale": cam.scale(min(t1, 1.0))}))
        t = t1
    return objs


def _wedge(cam: Camera, x0: float, x1: float, label: str, t0: float = 0.0, t1: float = 3.0) -> SceneObject:
    """The ground strip between lateral positions x0 and x1 (metres) from row t0 to t1."""
    return SceneObject(
        label,
        [cam.ground(x0, t0), cam.ground(x1, t0), cam.ground(x1, t1), cam.ground(x0, t1)],
        {"scale": cam.scale(1.0)},
    )


def _ground(rng: np.random.Generator, cam: Camera, st: Street, showcase: bool) -> list[SceneObject]:
    (rl, rr), (sl, sr), (vl, vr) = st.road, st.sidewalk, st.verge
    objs = [
        _wedge(cam, rl, rr, "road", 0.0, 3.0),
        _wedge(cam, sl, rl, "sidewalk"),
        _wedge(cam, rr, sr, "sidewalk"),
        _wedge(cam, vl, sl, "terrain"),
        _wedge(cam, sr, vr, "terrain"),
    ]
    if showcase or rng.random() < 0.4:  # a parking bay along one road edge
        side = rng.choice([-1, 1])
        edge = rl if side < 0 else rr
        t0 = rng.uniform(0.1, 0.3)
        objs.append(_wedge(cam, edge, edge - side * 2.2, "parking", t0, t0 * rng.uniform(1.5, 2.5)))
    if showcase or rng.random() < 0.4:  # a patch of bare ground on a verge
        t0 = rng.uniform(0.08, 0.3)
        objs.append(_wedge(cam, vl, (vl + sl) / 2, "ground", t0, t0 * rng.uniform(1.4, 2.2)))
    return objs


def _rail_track(cam: Camera, x_m: float) -> SceneObject:
    return SceneObject(
        "rail track",
        [
            cam.ground(x_m - 0.9, 0.0),
            cam.ground(x_m + 0.9, 0.0),
            cam.ground(x_m + 0.9, 3.0),
            cam.ground(x_m - 0.9, 3.0),
        ],
        {"scale": cam.scale(1.0), "rails": True},
    )


def _barrier(cam: Camera, label: str, x_m: float, t0: float, t1: float, height: float) -> SceneObject:
    """A wall, fence or guard rail standing along the street from row t0 to t1."""
    return SceneObject(
        label,
        [
            cam.upright(x_m, t0, height),
            cam.upright(x_m, t1, height),
            cam.ground(x_m, t1),
            cam.ground(x_m, t0),
        ],
        {"scale": cam.scale(min(t1, 1.0))},
    )


def _barriers(rng: np.random.Generator, cam: Camera, st: Street, showcase: bool) -> list[SceneObject]:
    (_, _), (sl, sr), (vl, vr) = st.road, st.sidewalk, st.verge
    wall_side, fence_side = (vl, vr) if rng.random() < 0.5 else (vr, vl)
    t0 = rng.uniform(0.05, 0.2)
    objs = [_barrier(cam, "wall", wall_side, t0, t0 * rng.uniform(3, 8), rng.uniform(0.8, 2.2))]
    t0 = rng.uniform(0.05, 0.2)
    objs.append(_barrier(cam, "fence", fence_side, t0, t0 * rng.uniform(3, 8), rng.uniform(1.0, 2.0)))
    if showcase or rng.random() < 0.3:
        side = sl if rng.random() < 0.5 else sr
        t0 = rng.uniform(0.05, 0.15)
        objs.append(_barrier(cam, "guard rail", side, t0, t0 * rng.uniform(2, 5), 0.8))
    return objs


def _bridge(rng: np.random.Generator, cam: Camera) -> list[SceneObject]:
    t = rng.uniform(0.05, 0.12)
    z0, z1 = rng.uniform(5, 7), rng.uniform(7.5, 9)
    left, right = cam.upright(-200, t, z0), cam.upright(200, t, z0)
    return [
        SceneObject(
            "bridge",
            [(left[0], cam.upright(0, t, z1)[1]), (right[0], cam.upright(0, t, z1)[1]), right, left],
            {"scale": cam.scale(t)},
        )
    ]


def _tunnel(cam: Camera, st: Street) -> list[SceneObject]:
    """A tunnel portal (a U around an arch) far down the road."""
    t, (rl, rr) = 0.04, st.road
    arch = [
        cam.upright(rr * math.cos(a), t, 4.5 + 2.5 * math.sin(a)) for a in np.radians(np.arange(0, 181, 30))
    ]
    outer = [
        cam.ground(rl - 3, t),
        cam.upright(rl - 3, t, 10),
        cam.upright(rr + 3, t, 10),
        cam.ground(rr + 3, t),
    ]
    return [
        SceneObject(
            "tunnel", outer + [cam.ground(rr, t)] + arch + [cam.ground(rl, t)], {"scale": cam.scale(t)}
        )
    ]


# ---------------------------------------------------------------- things: sorted by depth later

Group = tuple[float, list[SceneObject]]
"""(t, objects) of one physical thing; groups are drawn far (small t) to near."""


def _tree(rng: np.random.Generator, cam: Camera, x_m: float, t: float) -> Group:
    s, height = cam.scale(t), rng.uniform(4, 9)
    trunk = cam.place(_box(0.35, height * 0.6), x_m, t)
    r = rng.uniform(1.5, 3.0)
    crown = cam.place(_ellipse(0.0, height * 0.6 + r * 0.6, r, r * 0.9, 14, rng, 0.2), x_m, t)
    return t, [
        SceneObject("vegetation", trunk, {"scale": s, "trunk": True}),
        SceneObject("vegetation", crown, {"scale": s}),
    ]


def _hedge(rng: np.random.Generator, cam: Camera, x_m: float, t: float) -> Group:
    length = rng.uniform(0.6, 1.6)
    h = rng.uniform(0.6, 1.4)
    pts = [cam.ground(x_m, t), cam.ground(x_m, t * length)]
    pts += [cam.upright(x_m, t * length, h), cam.upright(x_m, t, h)]
    return max(t, t * length), [SceneObject("vegetation", pts, {"scale": cam.scale(t)})]


def _pole(rng: np.random.Generator, cam: Camera, x_m: float, t: float, topper: str | None) -> Group:
    s, height = cam.scale(t), rng.uniform(3.5, 7.0)
    objs = [SceneObject("pole", cam.place(_box(0.14, height), x_m, t), {"scale": s})]
    if topper == "traffic sign":
        z = height - rng.uniform(0.2, 0.8)
        shape = rng.choice(["circle", "triangle", "square"])
        if shape == "circle":
            sign = _ellipse(0.0, z, 0.35, 0.35, 12)
        elif shape == "triangle":
            sign = [(-0.4, z - 0.3), (0.4, z - 0.3), (0.0, z + 0.4)]
        else:
            sign = _box(0.6, 0.6, z - 0.3)
        objs.append(SceneObject("traffic sign", cam.place(sign, x_m, t), {"scale": s}))
    elif topper == "traffic light":
        z = height - 1.0
        objs.append(SceneObject("traffic light", cam.place(_box(0.36, 0.95, z), x_m, t), {"scale": s}))
    elif topper == "polegroup":
        objs = [
            SceneObject(
                "polegroup",
                cam.place([(-0.3, 0), (0.3, 0), (0.3, height), (-0.3, height)], x_m, t),
                {"scale": s},
            )
        ]
    return t, objs


def _vehicle(rng: np.random.Generator, cam: Camera, label: str, x_m: float, t: float, side: bool) -> Group:
    s = cam.scale(t)
    if label in ("car", "caravan", "cargroup"):
        shape = _CAR_SIDE if side else _CAR_REAR
        if label == "caravan":
            shape = [(x * 1.3, z * 1.7) for x, z in shape]
        elif label == "cargroup":
            shape = [(x * 3.0, z) for x, z in _CAR_REAR]
    elif label == "truck":
        shape = _TRUCK_SIDE if side else _box(2.5, 3.4)
    elif label == "bus":
        shape = _box(11.0, 3.2, 0.1) if side else _box(2.55, 3.2, 0.1)
    elif label == "train":
        shape = _box(16.0, 3.5, 0.2) if side else _box(2.65, 3.6, 0.2)
    elif label == "trailer":
        shape = _box(3.0 if side else 2.0, 1.3, 0.3)
    else:
        raise ValueError(label)
    k = rng.uniform(0.9, 1.1)
    objs = [
        SceneObject(
            label, cam.place([(x * k, z * k) for x, z in shape], x_m, t), {"scale": s * k, "side": side}
        )
    ]
    if label == "car" and not side:  # every car seen from behind shows its plate
        objs.append(SceneObject("license plate", cam.place(_box(0.52, 0.12, 0.45 * k), x_m, t), {"scale": s}))
    return t, objs


def _person(rng: np.random.Generator, cam: Camera, x_m: float, t: float, group: bool = False) -> Group:
    k = rng.uniform(0.85, 1.12)
    if group:
        shape = [(x * 4.0, z * k) for x, z in _PERSON]
        return t, [SceneObject("persongroup", cam.place(shape, x_m, t), {"scale": cam.scale(t)})]
    shape = [(x * k * rng.uniform(0.85, 1.2), z * k) for x, z in _PERSON]
    return t, [SceneObject("person", cam.place(shape, x_m, t), {"scale": cam.scale(t) * k})]


def _two_wheeler_group(
    rng: np.random.Generator, cam: Camera, label: str, x_m: float, t: float, ridden: bool
) -> Group:
    s, flip = cam.scale(t), rng.random() < 0.5
    shape = _two_wheeler(1.75, 0.34, 1.0) if label == "bicycle" else _two_wheeler(2.1, 0.32, 1.1)
    if flip:
        shape = [(-x, z) for x, z in shape]
    objs = [SceneObject(label, cam.place(shape, x_m, t), {"scale": s})]
    if ridden:
        rider = [(-x if flip else x, z) for x, z in _RIDER]
        objs.append(SceneObject("rider", cam.place(rider, x_m, t), {"scale": s}))
    return t, objs


def _small_void(rng: np.random.Generator, cam: Camera, label: str, x_m: float, t: float) -> Group:
    """`static` street furniture (bins, boxes) and `dynamic` movable things (carts, strollers)."""
    if label == "static":
        shape = _box(rng.uniform(0.4, 1.2), rng.uniform(0.6, 1.4))
    else:
        shape = [(-0.5, 0.1), (0.5, 0.1), (0.55, 0.7), (0.3, 0.9), (-0.55, 0.8)]
    return t, [SceneObject(label, cam.place(shape, x_m, t), {"scale": cam.scale(t)})]


def _t_at(cam: Camera, distance: float) -> float:
    """Row parameter of a ground point `distance` metres ahead (the bottom row lies ~d1 ahead)."""
    d1 = cam.hc * 3.2
    return d1 / distance


def _things(rng: np.random.Generator, cam: Camera, st: Street, showcase: bool) -> list[SceneObject]:
    """Trees, poles, vehicles, people and clutter, each placed in the street and drawn far to near."""
    (rl, rr), (sl, sr), (vl, vr) = st.road, st.sidewalk, st.verge
    lanes = [rl + 1.8, (rl + rr) / 2, rr - 1.8]

    def at(lo: float, hi: float) -> float:
        return _t_at(cam, rng.uniform(lo, hi))

    def walkway() -> float:
        return rng.uniform(sl + 0.4, rl - 0.4) if rng.random() < 0.5 else rng.uniform(rr + 0.4, sr - 0.4)

    groups: list[Group] = []
    for side_x in ((vl + sl) / 2, (sr + vr) / 2):
        for _ in range(rng.integers(1, 4)):
            groups.append(_tree(rng, cam, side_x + rng.uniform(-0.5, 0.5), at(6, 60)))
        if rng.random() < 0.5:
            groups.append(_hedge(rng, cam, side_x, at(8, 40)))
    toppers = ["traffic sign", "traffic light", None, "traffic sign", "traffic light"]
    if showcase or rng.random() < 0.3:
        toppers.append("polegroup")
    for topper in toppers:
        x = (rl - 0.5) if rng.random() < 0.5 else (rr + 0.5)
        groups.append(_pole(rng, cam, x, at(6, 50), topper))

    def count(lo: int, hi: int, forced: bool) -> int:
        return max(int(rng.integers(lo, hi + 1)), 1 if forced else 0)

    for k in range(count(2, 5, True)):
        side = rng.random() < 0.35 and not (showcase and k == 0)
        x = (
            (rl + 1.1 if rng.random() < 0.5 else rr - 1.1)
            if side
            else rng.choice(lanes) + rng.uniform(-0.4, 0.4)
        )
        groups.append(_vehicle(rng, cam, "car", x, at(5, 45), side))
    for label, p in (("truck", 0.5), ("bus", 0.45), ("caravan", 0.12), ("trailer", 0.12), ("cargroup", 0.2)):
        if showcase or rng.random() < p:
            far = 25 if label == "cargroup" else 12
            groups.append(_vehicle(rng, cam, label, rng.choice(lanes), at(far, 70), rng.random() < 0.3))
    if showcase or rng.random() < 0.35:  # a tram on its track along one lane
        x = lanes[0] if rng.random() < 0.5 else lanes[2]
        groups.append((0.0, [_rail_track(cam, x)]))
        groups.append(_vehicle(rng, cam, "train", x, at(15, 60), rng.random() < 0.25))
    for _ in range(count(2, 6, True)):
        groups.append(_person(rng, cam, walkway(), at(5, 40)))
    if rng.random() < 0.3:  # someone crossing the road
        groups.append(_person(rng, cam, rng.uniform(rl, rr), at(8, 30)))
    if showcase or rng.random() < 0.2:
        groups.append(_person(rng, cam, walkway(), at(25, 60), group=True))
    for label in ("bicycle", "motorcycle"):
        for _ in range(count(0, 2, showcase)):  # ridden on the road near its edge
            x = (rl + 1.0) if rng.random() < 0.5 else (rr - 1.0)
            groups.append(_two_wheeler_group(rng, cam, label, x, at(6, 35), ridden=True))
        for _ in range(count(0, 1, False)):  # parked on a sidewalk
            groups.append(_two_wheeler_group(rng, cam, label, walkway(), at(5, 30), ridden=False))
    for label in ("static", "dynamic"):
        for _ in range(count(1, 3, True)):
            groups.append(_small_void(rng, cam, label, walkway(), at(5, 35)))
    groups.sort(key=lambda g: g[0])  # stable: parts of one thing keep their order
    return [obj for _, objs in groups for obj in objs]


# ------------------------------------------------------------- foreground: the camera's own car and borders


def _ego_and_borders(rng: np.random.Generator, cam: Camera, showcase: bool) -> list[SceneObject]:
    h, w = cam.h, cam.w
    top = h * rng.uniform(0.86, 0.93)
    hood = (
        [(0, h), (0, h - (h - top) * 0.4)]
        + [(w * k / 8, top + (h - top) * 0.55 * (2 * k / 8 - 1) ** 2) for k in range(1, 8)]
        + [(w, h - (h - top) * 0.4), (w, h)]
    )
    objs = [SceneObject("ego vehicle", hood, {"scale": h / 256})]
    if showcase or rng.random() < 0.3:
        c = w * rng.uniform(0.02, 0.06)
        objs.append(SceneObject("rectification border", [(0, 0), (c, 0), (0, c * 0.5)], {"scale": 1.0}))
    b = max(1.0, w / 200)
    objs.append(SceneObject("out of roi", [(0, 0), (b, 0), (b, h), (0, h)], {"scale": 1.0}))
    objs.append(SceneObject("out of roi", [(w - b, 0), (w, 0), (w, h), (w - b, h)], {"scale": 1.0}))
    return objs


# ---------------------------------------------------------------- the whole frame


def layout(rng: np.random.Generator, h: int, w: int, *, showcase: bool = False) -> list[SceneObject]:
    """All objects of one frame, back to front; `showcase` forces every rare label into the frame."""
    cam = Camera(
        h, w, yh=h * rng.uniform(0.36, 0.47), vx=w * rng.uniform(0.38, 0.62), hc=rng.uniform(1.2, 1.6)
    )
    half = rng.uniform(3.5, 7.0)
    rl, rr = -half + rng.uniform(-1, 1), half + rng.uniform(-1, 1)
    sl, sr = rl - rng.uniform(2.0, 4.0), rr + rng.uniform(2.0, 4.0)
    st = Street((rl, rr), (sl, sr), (sl - rng.uniform(0.8, 3.0), sr + rng.uniform(0.8, 3.0)))
    objs = _sky(cam) + _skyline(rng, cam) + _backdrop(cam, "vegetation")
    if showcase or rng.random() < 0.15:
        objs += _bridge(rng, cam)
    objs += _facades(rng, cam, st.verge[0]) + _facades(rng, cam, st.verge[1])
    if showcase or rng.random() < 0.08:
        objs += _tunnel(cam, st)
    objs += _ground(rng, cam, st, showcase) + _barriers(rng, cam, st, showcase)
    objs += _things(rng, cam, st, showcase)
    objs += _ego_and_borders(rng, cam, showcase)
    return objs


def closeup(label: str, slot: int, slots: int, band: int, h: int, w: int) -> SceneObject:
    """A plain block of `label` in the lower foreground, used when a required label ended up hidden;
    each retry (`band`) uses its own row band so that it does not cover the blocks placed before."""
    x0 = w * (slot + 0.1) / slots
    x1 = x0 + min(w * 0.8 / slots, w * 0.06)
    y0, y1 = h * (0.5 + 0.08 * band), h * (0.56 + 0.08 * band)
    return SceneObject(label, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], {"scale": h / 256})
