"""A sweep's output folder: its manifest, one sums file per finished unit, and a lock per unit being computed.

    OUT/manifest.json              what the numbers depend on (plan.manifest); a sweep resumes only its own
    OUT/units/{corruption}-{s}.json   a finished unit: the evaluator's sums and each frame's confusion matrix
                                   (sparse: `Accumulator.to_sums`), stamped with the manifest digest
    OUT/units/.{name}.json.lock    held (flock) by the process computing that unit

Resumption is "skip what is finished": a unit file exists only once its unit is complete (written whole with
`common/atomic.py`: a kill leaves no file or the whole file, never a half), and holds the Accumulator's exact
sums (integer confusion matrix, instance sums as exact float reprs), so a resumed sweep's numbers are those of
an uninterrupted one, per frame too (OUT/frames.csv). Workers share the folder: a unit is computed by
whoever first takes its lock, and the kernel releases a lost worker's locks so another takes the unit over.
This needs a file system with working `flock` between the workers (local disks and most shared ones; not
every NFS setup).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import atomic
from bench.evaluation.accumulator import Accumulator
from bench.robustness.plan import Unit, differences, digest
from data.errors import UserError
from data.files import read_file

MANIFEST = "manifest.json"
UNITS = "units"


class SweepFolder:
    """The output folder of one sweep (`manifest` as `plan.manifest` makes it)."""

    def __init__(self, out: str | os.PathLike, manifest: dict[str, Any]):
        self.out = Path(out)
        self.manifest = json.loads(json.dumps(manifest))  # as it reads back: lists, not tuples
        self.digest = digest(manifest)

    def open(self) -> SweepFolder:
        """Write the manifest into a new folder, or check an existing folder's against ours (refuse others).

        Several workers may open the same folder at once: the manifest is read and written under a lock.
        """
        atomic.check_writable(self.out, "--out", folder=True)
        path = self.out / MANIFEST
        with atomic.locked(path):
            if path.is_file():
                theirs = _read_json(
                    path,
                    f"delete the folder {self.out} to start the sweep again (its units cannot be "
                    f"trusted without their manifest), or choose a new --out",
                )
                if theirs != self.manifest:
                    changed = ", ".join(differences(self.manifest, theirs))
                    raise UserError(
                        f"--out {self.out} holds a sweep with other settings ({changed} differ): rerun with "
                        f"the settings of {path}, or choose a new --out"
                    )
            elif self.out.is_dir() and any(p.name != f".{MANIFEST}.lock" for p in self.out.iterdir()):
                ours = (self.out / UNITS).is_dir()  # a sweep's own folder of unit files
                fix = (
                    f"it is a sweep whose {MANIFEST} was deleted: delete the folder {self.out} to start again"
                    if ours
                    else "choose a new or empty folder"
                )
                raise UserError(f"--out {self.out} already holds files but no {MANIFEST}: {fix}")
            else:
                atomic.write_text(path, json.dumps(self.manifest, indent=1) + "\n")
        (self.out / UNITS).mkdir(exist_ok=True)
        return self

    def unit_path(self, unit: Unit) -> Path:
        return self.out / UNITS / f"{unit.name}.json"

    def is_done(self, unit: Unit) -> bool:
        return self.unit_path(unit).is_file()

    @contextlib.contextmanager
    def claim(self, unit: Unit) -> Iterator[bool]:
        """Yield True holding `unit`'s lock when it is not done and nobody else holds it, else False."""
        path = self.unit_path(unit)
        with open(path.with_name(f".{path.name}.lock"), "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield not path.is_file()  # checked under the lock: finished while we waited for it
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def save(self, unit: Unit, totals: Accumulator, extra: dict[str, Any]) -> Path:
        """Write a finished unit's sums (whole, atomically)."""
        data = {
            "manifest_sha256": self.digest,
            "corruption": unit.corruption,
            "severity": unit.severity,
            **totals.to_sums(),
            **extra,
        }
        return atomic.write_text(self.unit_path(unit), json.dumps(data) + "\n")

    def load(self, unit: Unit) -> tuple[Accumulator, dict[str, Any]]:
        """A finished unit's sums as an Accumulator (whose `result()` is the evaluator's) and its data."""
        path = self.unit_path(unit)
        data = _read_json(path)
        try:
            if data["manifest_sha256"] != self.digest or [data["corruption"], data["severity"]] != [
                unit.corruption,
                unit.severity,
            ]:
                raise ValueError("it belongs to another sweep or unit")
            totals = Accumulator.from_sums(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"{path} is not a finished unit of this sweep ({exc}): delete it to recompute it"
            ) from None
        return totals, data


def _read_json(path: Path, fix: str = "delete it to start that part again") -> Any:
    try:
        return json.loads(read_file(path, "sweep file", max_bytes=64 << 20).decode("utf-8"))
    except ValueError as exc:
        raise UserError(f"cannot read {path} ({exc}): {fix}") from None
    except UserError as exc:
        raise UserError(f"{exc}; {fix}") from None
