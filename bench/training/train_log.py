"""What a training run writes besides checkpoints: `train_log.csv`, `val_log.csv` and its curve
`val_miou.png`, and TensorBoard scalars (`OUT/tensorboard/`). Written by the chief only."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.common.atomic import writing

FIX = "free space or choose another --out, then --resume"

LOG_COLUMNS = ("step", "loss", "main_loss", "aux_loss", "pixel_acc", "lr", "images_per_s", "seconds")
VAL_COLUMNS = ("step", "miou", "iiou", "category_miou", "category_iiou", "n_images", "seconds")
VAL_CURVE = "val_miou.png"


class CsvLog:
    """Rows appended to a CSV file; on resume, rows past the restored step are dropped."""

    def __init__(self, path: Path, columns: tuple[str, ...], start_step: int):
        self.path, self.columns = path, columns
        rows = []
        with writing(path, "training log", FIX):
            if path.is_file():
                with path.open(newline="") as f:
                    rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        with writing(self.path, "training log", FIX), self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: row[k] for k in self.columns})

    def rows(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))


class TensorBoard:
    """Scalars for TensorBoard (`tensorboard --logdir OUT/tensorboard`; the package is pinned)."""

    def __init__(self, out: Path):
        import tensorflow as tf

        self.folder = out / "tensorboard"
        with writing(self.folder, "TensorBoard events", FIX):
            self.writer = tf.summary.create_file_writer(str(self.folder))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        import tensorflow as tf

        try:
            with self.writer.as_default():
                for key, value in scalars.items():
                    tf.summary.scalar(key, float(value), step=int(step))
            self.writer.flush()
        except tf.errors.OpError as exc:  # TensorFlow's own file layer: no space, read-only, ...
            raise OSError(exc.message) from None


class TrainingLog:
    """What the chief writes besides checkpoints: the training CSV, the validation CSV and its curve, and
    TensorBoard scalars."""

    def __init__(self, out: Path, start_step: int, *, validation: bool, target: float | None = None):
        self.out, self.target = out, target
        self.train = CsvLog(out / "train_log.csv", LOG_COLUMNS, start_step)
        self.val = CsvLog(out / "val_log.csv", VAL_COLUMNS, start_step) if validation else None
        self.tensorboard = TensorBoard(out)

    def write(self, row: dict[str, float]) -> None:
        self.train.write(row)
        with writing(self.tensorboard.folder, "TensorBoard events", FIX):
            self.tensorboard.write(int(row["step"]), {k: row[k] for k in LOG_COLUMNS[1:]})

    def write_validation(self, row: dict[str, float]) -> None:
        from bench.report.plots import miou_curve

        self.val.write(row)
        with writing(self.tensorboard.folder, "TensorBoard events", FIX):
            self.tensorboard.write(int(row["step"]), {f"val/{k}": row[k] for k in VAL_COLUMNS[1:5]})
        rows = self.val.rows()
        with writing(self.out / VAL_CURVE, "validation curve", FIX):
            miou_curve(
                [int(r["step"]) for r in rows],
                [100.0 * float(r["miou"]) if r["miou"] else float("nan") for r in rows],
                self.out / VAL_CURVE,
                target=self.target,
            )
