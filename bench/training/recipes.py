"""Named training recipes: every setting of a training run as code, with the result it should reach.

`bench train --recipe NAME` starts from a recipe (its flags override single settings), `bench run` trains
its default checkpoints with the CPU recipes, `python -m bench recipes` lists them, and checkpoints and
result rows record the recipe's name. No TensorFlow here: listing recipes is instant.

The mmsegmentation recipes are those of `configs/pspnet/pspnet_r50-d8_4xb2-{40k,80k}_cityscapes-512x1024.py`
(4 GPUs x 2 images, SGD lr 0.01 momentum 0.9 weight decay 5e-4, poly 0.9, random resize 0.5-2.0 of
2048x1024, crop 512x1024, flip, SyncBN, auxiliary FCN head 0.4), on the `mmseg` preset of `pspnet` (the
ResNetV1c R-50-D8 layout that converted mmsegmentation checkpoints load into). Where our trainer differs
from mmsegmentation, the recipe's `deviations` say so.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from data.sizes import SCALE_RANGE

AUX_WEIGHT = 0.4
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class Published:
    """The result a recipe should reach, as its source publishes it (mIoU in percent): read from the
    reference row the recipe names (results/reference/*.csv), the figures' one home."""

    miou: float
    split: str
    protocol: str
    source: str
    url: str


@dataclass(frozen=True)
class Recipe:
    """All settings of a training run (what a checkpoint records and a result row names). `model`/`preset`
    None: the caller chooses (e.g. `bench run`); `options` are builder options beside the preset."""

    steps: int
    batch: int  # global batch, split over the replicas
    crop: tuple[int, int]
    lr: float
    name: str = ""
    description: str = ""
    model: str | None = None
    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    weight_decay: float = WEIGHT_DECAY
    aux_weight: float = AUX_WEIGHT
    scale_range: tuple[float, float] = SCALE_RANGE
    flip: bool = True
    sync_bn: bool = True  # only matters with more than one replica
    checkpoint_every: int = 500
    val_every: int = 0  # 0: no validation during training
    reference: str | None = None  # id of the reference row (results/reference/) with the published result
    deviations: tuple[str, ...] = field(default=())
    cpu_minutes: float | None = None  # training time measured on the 2-core CPU of the README (None: not)

    def published(self) -> Published | None:
        """The result this recipe should reach, from its reference row; None when it names none."""
        if not self.reference:
            return None
        from bench.report import references

        row = references.select(self.reference)
        protocol = str(row["protocol"]).split(";")[0]
        return Published(float(row["miou"]), str(row["split"]), protocol, str(row["source"]), str(row["url"]))


_MMSEG_DEVIATIONS = (
    "no PhotoMetricDistortion and no cat_max_ratio=0.75 crop re-sampling in our input pipeline",
    "poly schedule ends at 0, mmsegmentation's at eta_min 1e-4",
    "weight decay is decoupled (Keras SGD) and skips BatchNorm and biases; mmsegmentation adds 5e-4 x w "
    "to every gradient",
    "the loss averages over valid pixels; mmsegmentation's CrossEntropyLoss divides by all pixels",
    "no ImageNet initialisation offline: mmsegmentation starts from open-mmlab://resnet50_v1c",
)


def _mmseg(steps: int) -> Recipe:
    return Recipe(
        name=f"mmseg-{steps // 1000}k",
        description=f"mmsegmentation's PSPNet R-50-D8 Cityscapes recipe, {steps // 1000}k iterations",
        model="pspnet",
        preset="mmseg",
        steps=steps,
        batch=8,
        crop=(512, 1024),
        lr=0.01,
        weight_decay=5e-4,
        aux_weight=0.4,
        scale_range=(0.5, 2.0),
        flip=True,
        sync_bn=True,
        checkpoint_every=steps // 10,
        val_every=steps // 10,
        reference=f"pspnet_r50-d8_4xb2-{steps // 1000}k_cityscapes-512x1024/ss",
        deviations=_MMSEG_DEVIATIONS,
    )


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        # The first `make bench` on a fresh clone must fit in 6 minutes on a loaded 2-core CPU, install
        # included (README, Quick start): 300 steps of 192x192 crops are 1,350 256x256-crop equivalents, the
        # PSPNet cpu preset trains 4-17 of those a second on 2 shared cores (measured, load 2-7).
        Recipe(
            name="cpu-synthetic",
            description="default checkpoint on the embedded synthetic set",
            steps=300,
            batch=8,
            crop=(192, 192),
            lr=0.03,
            cpu_minutes=3.0,
        ),
        # pspnet-seed keeps full-resolution features (16 GFLOP per 256x512 image even in its cpu preset, 9.6 s
        # per batch-8 step of 256x256 crops): smaller crops and batches keep its run near the same minutes.
        Recipe(
            name="cpu-synthetic-light",
            description="cpu-synthetic for full-resolution networks (pspnet-seed)",
            steps=400,
            batch=4,
            crop=(128, 128),
            lr=0.02,
        ),
        Recipe(
            name="cpu-real",
            description="CPU smoke run on real Cityscapes: proves the pipeline, not a published number",
            steps=800,
            batch=4,
            crop=(512, 512),
            lr=0.01,
        ),
        _mmseg(40_000),
        _mmseg(80_000),
    )
}

# Which CPU recipe trains `bench run`'s default checkpoint of a model.
SYNTHETIC_DEFAULT = "cpu-synthetic"
SYNTHETIC_BY_MODEL = {"pspnet-seed": "cpu-synthetic-light"}
REAL_DEFAULT = "cpu-real"

# The CLI's settings when no recipe is named (steps and model must then be given).
CLI_DEFAULTS = Recipe(steps=0, batch=8, crop=(512, 512), lr=0.01)


def get(name: str) -> Recipe:
    """The recipe of that name; an unknown name is a user error that lists the known ones."""
    from data.errors import UserError

    if name not in RECIPES:
        raise UserError(f"unknown recipe '{name}': choose one of {', '.join(RECIPES)} (`bench recipes`)")
    return RECIPES[name]


def default_recipe(model: str, dataset_kind: str) -> Recipe:
    """The CPU recipe of `model`'s default checkpoint on a synthetic or real dataset."""
    if dataset_kind == "synthetic":
        return RECIPES[SYNTHETIC_BY_MODEL.get(model, SYNTHETIC_DEFAULT)]
    return RECIPES[REAL_DEFAULT]


def with_overrides(recipe: Recipe, **overrides) -> Recipe:
    """`recipe` with the settings that are not None in `overrides` replaced (command-line flags)."""
    import dataclasses

    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"not recipe settings: {unknown}")
    return dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def changed_settings(metadata: dict, r: Recipe) -> list[str]:
    """The settings a checkpoint (its metadata) was trained with that differ from recipe `r`."""
    used = {
        "steps": metadata.get("target_steps", metadata.get("steps")),
        "batch": metadata.get("batch"),
        "crop": tuple(metadata["crop"]) if metadata.get("crop") else None,
        "lr": metadata.get("lr"),
        "weight_decay": metadata.get("weight_decay"),
        "aux_weight": metadata.get("aux_weight"),
        "scale_range": tuple(metadata["scale_range"]) if metadata.get("scale_range") else None,
        "flip": metadata.get("flip"),
    }
    if r.model:
        used |= {"model": metadata.get("model"), "preset": metadata.get("preset")}
    return [k for k, v in used.items() if v is not None and v != getattr(r, k)]


def label(metadata: dict) -> str:
    """The recipe a checkpoint was trained with, as a result row names it: its name, plus the settings
    that were changed from it ("mmseg-80k (changed: steps, crop)"); '' when it names none."""
    name = metadata.get("recipe") or ""
    if name not in RECIPES:
        return name
    changed = changed_settings(metadata, RECIPES[name])
    return f"{name} (changed: {', '.join(changed)})" if changed else name


def table() -> str:
    """The recipes as an aligned text table (what `bench recipes` prints)."""
    header = ("recipe", "model", "steps", "batch", "crop", "lr", "wd", "scale", "flip", "syncBN", "aux")
    header += ("val",)
    rows = [header]
    for r in RECIPES.values():
        model = f"{r.model}:{r.preset}" if r.model and r.preset else (r.model or "(bench run's)")
        rows.append(
            (
                r.name,
                model,
                str(r.steps),
                str(r.batch),
                f"{r.crop[0]}x{r.crop[1]}",
                f"{r.lr:g}",
                f"{r.weight_decay:g}",
                f"{r.scale_range[0]:g}-{r.scale_range[1]:g}",
                "yes" if r.flip else "no",
                "yes" if r.sync_bn else "no",
                f"{r.aux_weight:g}",
                str(r.val_every or "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    for r in RECIPES.values():
        published = r.published()
        target = (
            f"should reach {published.miou:.2f} {published.split} mIoU ({published.protocol}; "
            f"{published.source}, {published.url})"
            if published
            else "no published target"
        )
        took = f" (trains in about {r.cpu_minutes:g} min on a 2-core CPU)" if r.cpu_minutes else ""
        lines.append(f"{r.name}: {r.description}{took}; {target}")
        lines.extend(f"    differs: {d}" for d in r.deviations)
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`bench recipes` takes no options."""


def run(args: argparse.Namespace) -> int:
    print(table())
    return 0
