"""What a robustness sweep computes: its frames, its units (corruption, severity), seeds, presets, manifest.

A unit is one (corruption, severity) over every frame of the sweep, plus the clean unit (severity 0, the
frames as they are). A unit is the grain of everything else: one process computes it whole, frames in
sample order (so its instance sums are added in cityscapesScripts' order), saves its sums once, and the
sweep's resumption, sharing among workers and final table all count in units.

The manifest names everything the numbers depend on (checkpoint content, dataset, frames and a hash of
their contents, units, seeds,
package version, inference settings); a folder holding another manifest is never resumed with these
settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from data.corruptions import CLEAN, CORRUPTIONS, check_corruption, severities
from data.errors import UserError
from data.files import content_digest

PROTOCOL = "cityscapes-c"
"""Kamann & Rother (CVPR 2020), as SegFormer runs it: 16 corruptions, severities 1-5 (noises 1-3)."""

SEED_SCHEME = "sha256(key|corruption|severity|seed)[:4] big-endian"
"""How a frame's seed is made (data.corruptions.seed_for); recorded so a changed scheme is never resumed."""


@dataclass(frozen=True)
class Preset:
    """Defaults of a sweep size: frames (None: all), severities kept of each corruption's."""

    limit: int | None
    severities: tuple[int, ...]
    help: str


PRESETS = {
    "lite": Preset(4, (1, 3, 5), "4 frames, severities 1/3/5 (noises 1/3): a quick check in minutes"),
    "full": Preset(None, (1, 2, 3, 4, 5), "every frame, every severity: the published protocol"),
}


@dataclass(frozen=True, order=True)
class Unit:
    """One cell of the table: a corruption at a severity (or the clean frames, severity 0)."""

    corruption: str
    severity: int

    @property
    def name(self) -> str:
        """File-name stem: `clean-0`, `motion_blur-3`."""
        return f"{self.corruption}-{self.severity}"


def units(corruptions: Sequence[str] | None = None, wanted: Sequence[int] | None = None) -> list[Unit]:
    """The clean unit, then each corruption (protocol order) at each of its severities that is `wanted`."""
    names = [check_corruption(c) for c in corruptions] if corruptions else list(CORRUPTIONS)
    if len(set(names)) != len(names):
        raise UserError(f"--corruptions {','.join(names)} names a corruption twice")
    wanted = tuple(wanted) if wanted else (1, 2, 3, 4, 5)
    if any(s not in (1, 2, 3, 4, 5) for s in wanted):
        raise UserError(f"--severities {','.join(map(str, wanted))}: severities are 1 to 5")
    result = [Unit(CLEAN, 0)]
    for name in sorted(names, key=CORRUPTIONS.index):
        levels = [s for s in severities(name) if s in wanted]
        if not levels:
            raise UserError(
                f"{name} has severities {','.join(map(str, severities(name)))} only: none of --severities "
                f"{','.join(map(str, wanted))}"
            )
        result += [Unit(name, s) for s in levels]
    return result


def share(all_units: Sequence[Unit], worker: int, workers: int) -> list[Unit]:
    """The order in which `worker` of `workers` visits the units: its own share (every `workers`-th unit,
    starting at its index) first, then the others', so a worker that finishes early takes over units
    nobody holds (a lost worker's, or the tail of a slower one's)."""
    mine = [u for i, u in enumerate(all_units) if i % workers == worker]
    return mine + [u for u in all_units if u not in mine]


def manifest(
    *,
    checkpoint_sha256: str,
    dataset: str,
    split: str,
    frames: Sequence[str],
    frames_sha256: str,
    unit_list: Sequence[Unit],
    seed: int,
    package: str,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Everything a sweep's numbers depend on, as JSON-ready values."""
    return {
        "protocol": PROTOCOL,
        "corruption_package": package,
        "seed": int(seed),
        "seed_scheme": SEED_SCHEME,
        "checkpoint_sha256": checkpoint_sha256,
        "dataset": dataset,
        "split": split,
        "frames": list(frames),
        "frames_sha256": frames_sha256,
        "units": [[u.corruption, u.severity] for u in unit_list],
        "settings": dict(settings),
    }


def frames_digest(samples: Sequence[Any]) -> str:
    """What the frames hold: a content hash of every image, label and instance file (with its key), so that
    two datasets of the same names but other pixels never share a sweep folder (the name `cityscapes` is
    every real copy's)."""
    return content_digest(
        (s.key, path) for s in samples for path in (s.image, s.label_ids, s.instance_ids) if path is not None
    )


def digest(data: dict[str, Any]) -> str:
    """Hex SHA-256 of a manifest's canonical JSON: what each unit file is stamped with."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Top-level manifest keys whose values differ, for a message that says what changed."""
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
