"""Parity of `bench convert` + `bench predict` with mmsegmentation's own PSPNet (run by `make parity`).

Runs in the parity venv (.venv-parity: torch CPU + mmsegmentation 1.2.2) and imports only torch, mmseg,
numpy and pillow; our side runs as subprocesses of the project's venv (`python -m bench convert`,
`python -m bench predict --save-logits`), so nothing of ours is imported next to the oracle.

For each depth (R-18/50/101-D8, mmseg's own Cityscapes 512x1024 configs, norm_cfg BN instead of SyncBN on
one CPU process): build the model with mmseg's registry, draw random BatchNorm affine parameters and measure
BatchNorm statistics on realistic images (train-mode forward over one batch, cumulative average: random
statistics give near-constant outputs that hide conversion errors), save the checkpoint in both torch formats
(zip and legacy) as `{"meta", "state_dict"}` like the published files, run mmseg's whole-image test path
(`data_preprocessor` + `predict`) on full-resolution frames and compare its logits with ours: max |delta
logits| and arg-max agreement. Exit status 1 if any depth or format misses the targets.

`--write-fixtures DIR` instead writes the small committed fixtures of tests/test_convert_parity.py: a
reduced-width R-18-D8 (mmseg's ResNetV1c with base_channels 8; still mmseg's own code) in both formats, one
input frame and mmseg's logits for it.

Images come from the project's synthetic generator (`python -m data.synthetic`): structured street scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MIN_AGREEMENT = 0.999  # fraction of pixels whose arg-max class agrees
MAX_LOGIT_ERROR = 1e-3
CONFIGS = {  # mmseg 1.2.2's Cityscapes PSPNet configs (inside the wheel under mmseg/.mim/configs/)
    18: "pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py",
    50: "pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py",
    101: "pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py",
}
FORMATS = ("zip", "legacy")
FIXTURE_SIZE = (104, 200)  # feature map 13x25: the pyramid's 2/3/6 bins overlap, strided convs see odd sizes


def import_mmseg():
    """mmseg with a stub `mmcv.ops` (mmcv-lite has no compiled ops; PSPNet uses none of them)."""
    stub = types.ModuleType("mmcv.ops")
    for name in (
        "CrissCrossAttention",
        "PSAMask",
        "point_sample",
        "sigmoid_focal_loss",
        "DeformConv2d",
        "ModulatedDeformConv2d",
    ):
        setattr(stub, name, None)
    sys.modules["mmcv.ops"] = stub
    import mmseg
    from mmseg.utils import register_all_modules

    register_all_modules()
    return mmseg


def model_config(depth: int, **overrides):
    """The model dict of mmseg's own config file for `depth`, SyncBN replaced by BN, no pretrained file."""
    import mmseg
    from mmengine.config import Config

    path = Path(mmseg.__file__).parent / ".mim" / "configs" / CONFIGS[depth]
    cfg = Config.fromfile(str(path)).model
    cfg.pretrained = None
    for part in ("backbone", "decode_head", "auxiliary_head"):
        cfg[part].norm_cfg = {"type": "BN", "requires_grad": True}
    for part, values in overrides.items():
        cfg[part].update(values)
    return cfg


def build_model(cfg, seed: int, calibration: np.ndarray):
    """mmseg's model, random weights, BatchNorm statistics measured on `calibration` (B, H, W, 3 RGB)."""
    import torch
    from mmseg.registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                # random affine parameters, so that a swapped gamma/beta or a wrong epsilon shows
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
                module.reset_running_stats()
                module.momentum = None  # cumulative moving average over the calibration batch
        for head in (model.decode_head, model.auxiliary_head):
            head.conv_seg.bias.copy_(torch.randn(head.conv_seg.bias.shape, generator=generator) * 0.1)
        model.train()
        batch = model.data_preprocessor({"inputs": [to_bgr_tensor(image) for image in calibration]}, False)
        features = model.extract_feat(batch["inputs"])
        model.decode_head(features)
        model.auxiliary_head(features)
    return model.eval()


def to_bgr_tensor(image: np.ndarray):
    """An RGB uint8 frame as mmseg's LoadImageFromFile gives it: BGR, channels first."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)))


def mmseg_logits(model, image: np.ndarray) -> np.ndarray:
    """mmseg's whole-image test path: preprocessor (BGR->RGB, mean/std), predict, resize to the frame."""
    import torch
    from mmseg.structures import SegDataSample

    height, width = image.shape[:2]
    sample = SegDataSample(metainfo={"img_shape": (height, width), "ori_shape": (height, width)})
    with torch.no_grad():
        data = model.data_preprocessor({"inputs": [to_bgr_tensor(image)], "data_samples": [sample]}, False)
        result = model.predict(data["inputs"], data["data_samples"])[0]
    return result.seg_logits.data.numpy().transpose(1, 2, 0)  # (H, W, C) as ours


def save_both(model, folder: Path, stem: str, meta: dict) -> dict[str, Path]:
    """The checkpoint as mmseg publishes it ({"meta", "state_dict"}), in torch's zip and legacy formats."""
    import torch

    obj = {"meta": meta, "state_dict": model.state_dict()}
    paths = {"zip": folder / f"{stem}_zip.pth", "legacy": folder / f"{stem}_legacy.pth"}
    torch.save(obj, paths["zip"])
    torch.save(obj, paths["legacy"], _use_new_zipfile_serialization=False)
    return paths


def bench(args: list[str], python: Path) -> None:
    """Our side, in its own venv."""
    command = [str(python), "-m", "bench", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def synthetic(out: Path, python: Path, *, train: int, val: int, size: tuple[int, int], seed: int) -> Path:
    """A synthetic Cityscapes-format set made by the project's generator; returns its root."""
    command = [
        str(python),
        "-m",
        "data.synthetic",
        "--out",
        str(out),
        "--train",
        str(train),
        "--val",
        str(val),
        "--test",
        "0",
        "--size",
        f"{size[0]}x{size[1]}",
        "--seed",
        str(seed),
        "--quiet",
    ]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return out


def images(root: Path, split: str) -> list[tuple[str, np.ndarray]]:
    """(frame key, RGB uint8 array) of a split, sorted by key as `bench predict` lists them."""
    found = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    return [(p.name[: -len("_leftImg8bit.png")], np.asarray(Image.open(p).convert("RGB"))) for p in found]


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    if ours.shape != theirs.shape:
        raise SystemExit(f"logits shapes differ: ours {ours.shape}, mmseg {theirs.shape}")
    top2 = np.sort(theirs, axis=-1)[..., -2:]
    return {
        "agreement": float(np.mean(ours.argmax(-1) == theirs.argmax(-1))),
        "max_error": float(np.max(np.abs(ours.astype(np.float64) - theirs))),
        "classes": int(len(np.unique(theirs.argmax(-1)))),
        "margin": float(np.median(top2[..., 1] - top2[..., 0])),
        "pixels": int(np.prod(theirs.shape[:2])),
    }


def our_logits(checkpoint: Path, dataset: Path, work: Path, python: Path, tag: str) -> dict[str, np.ndarray]:
    """`bench convert` then `bench predict --save-logits` (whole mode, BatchNorm folded as by default)."""
    converted = work / f"{tag}.keras"
    bench(["convert", str(checkpoint), "--out", str(converted)], python)
    pred, logits = work / f"pred-{tag}", work / f"logits-{tag}"
    bench(
        [
            "predict",
            "--checkpoint",
            str(converted),
            "--dataset",
            str(dataset),
            "--split",
            "val",
            "--out",
            str(pred),
            "--save-logits",
            str(logits),
            "--no-progress",
        ],
        python,
    )
    found = {p.name[: -len("_logits.npy")]: np.load(p) for p in sorted(logits.glob("*_logits.npy"))}
    shutil.rmtree(logits)
    return found


def run_parity(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    mmseg = import_mmseg()
    work = Path(tempfile.mkdtemp(prefix="mmseg-parity-", dir=args.work))
    rows, began = [], time.perf_counter()
    try:
        calib_root = synthetic(
            work / "calib", args.python, train=args.calibration, val=0, size=args.calibration_size, seed=1
        )
        calibration = np.stack([image for _, image in images(calib_root, "train")])
        data = synthetic(work / "data", args.python, train=0, val=args.images, size=args.size, seed=0)
        frames = images(data, "val")
        for depth in args.depths:
            t0 = time.perf_counter()
            model = build_model(model_config(depth), seed=depth, calibration=calibration)
            expected = {key: mmseg_logits(model, image) for key, image in frames}
            meta = {
                "mmseg_version": mmseg.__version__,
                "torch_version": str(torch.__version__),
                "parity": True,
            }
            paths = save_both(model, work, f"pspnet_r{depth}-d8_parity", meta)
            t_torch = time.perf_counter() - t0
            for fmt in args.formats:
                t1 = time.perf_counter()
                ours = our_logits(paths[fmt], data, work, args.python, f"r{depth}-{fmt}")
                if sorted(ours) != sorted(expected):
                    raise SystemExit(
                        f"R-{depth} {fmt}: predicted frames {sorted(ours)}, expected {sorted(expected)}"
                    )
                stats = [compare(ours[key], expected[key]) for key in expected]
                pixels = sum(s["pixels"] for s in stats)
                rows.append(
                    {
                        "depth": depth,
                        "format": fmt,
                        "frames": len(stats),
                        "agreement": sum(s["agreement"] * s["pixels"] for s in stats) / pixels,
                        "max_error": max(s["max_error"] for s in stats),
                        "classes": min(s["classes"] for s in stats),
                        "margin": float(np.median([s["margin"] for s in stats])),
                        "seconds_torch": t_torch,
                        "seconds_ours": time.perf_counter() - t1,
                    }
                )
                print_row(rows[-1], header=len(rows) == 1)
            for path in paths.values():
                path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failed = [r for r in rows if r["agreement"] < MIN_AGREEMENT or r["max_error"] > MAX_LOGIT_ERROR]
    h, w = args.size
    print(
        f"\n{len(rows)} cases on {args.images} frame(s) of {h}x{w}, mmsegmentation {mmseg.__version__}, "
        f"torch {torch.__version__}, {time.perf_counter() - began:.0f} s; targets: agreement >= "
        f"{100 * MIN_AGREEMENT:.1f}%, max |delta logits| <= {MAX_LOGIT_ERROR:g}: "
        + ("all met" if not failed else f"{len(failed)} missed")
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failed else 0


def print_row(row: dict, header: bool) -> None:
    if header:
        print(
            f"{'model':<10} {'format':<7} {'frames':>6} {'agreement':>10} {'max|dlogit|':>12} "
            f"{'classes':>7} {'margin':>7} {'torch s':>8} {'ours s':>7}"
        )
    print(
        f"R-{row['depth']}-D8{'':<{4 - len(str(row['depth']))}} {row['format']:<7} {row['frames']:>6} "
        f"{100 * row['agreement']:>9.4f}% {row['max_error']:>12.2e} {row['classes']:>7} "
        f"{row['margin']:>7.3f} {row['seconds_torch']:>8.1f} {row['seconds_ours']:>7.1f}",
        flush=True,
    )


def write_fixtures(args: argparse.Namespace) -> int:
    """The committed fixtures: a reduced-width R-18-D8 in both formats, one frame, mmseg's logits."""
    import torch

    mmseg = import_mmseg()
    out = Path(args.write_fixtures)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mmseg-fixture-", dir=args.work))
    try:
        calib = synthetic(work / "calib", args.python, train=4, val=0, size=FIXTURE_SIZE, seed=1)
        calibration = np.stack([image for _, image in images(calib, "train")])
        data = synthetic(work / "data", args.python, train=0, val=1, size=FIXTURE_SIZE, seed=0)
        ((key, image),) = images(data, "val")
        # mmseg's own ResNetV1c/PSPHead/FCNHead at 1/8 of R-18-D8's widths: base 8 (8/16/32/64), stem 16
        cfg = model_config(
            18,
            backbone={"base_channels": 8, "stem_channels": 16},
            decode_head={"in_channels": 64, "channels": 16},
            auxiliary_head={"in_channels": 32, "channels": 8},
        )
        model = build_model(cfg, seed=18, calibration=calibration)
        logits = mmseg_logits(model, image)
        meta = {"mmseg_version": mmseg.__version__, "torch_version": str(torch.__version__), "parity": True}
        paths = save_both(model, out, "pspnet_r18-d8-w8", meta)
        Image.fromarray(image).save(out / "frame_leftImg8bit.png")
        np.save(out / "expected_logits.npy", logits.astype(np.float32))
        dtype_files = write_dtype_fixtures(out)
        stats = compare(logits, logits)
        manifest = {
            "made_by": "make parity-fixtures (tests/parity/mmseg_parity.py --write-fixtures)",
            "mmsegmentation": mmseg.__version__,
            "torch": torch.__version__,
            "config": CONFIGS[18] + " with backbone base_channels=8, stem_channels=16; decode_head "
            "channels=16; auxiliary_head channels=8; norm_cfg BN",
            "frame": f"{key} of the synthetic generator (seed 0), {FIXTURE_SIZE[0]}x{FIXTURE_SIZE[1]}",
            "checkpoints": {fmt: p.name for fmt, p in paths.items()},
            "expected": "expected_logits.npy: mmseg's whole-image logits (H, W, 19) float32",
            "dtypes": f"{', '.join(dtype_files)}: every storage type and views, as torch writes them",
            "classes_predicted": stats["classes"],
            "median_top2_margin": round(stats["margin"], 4),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
        print(f"mmseg predicts {stats['classes']} classes, median top-2 margin {stats['margin']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def write_dtype_fixtures(out: Path) -> list[str]:
    """Tiny files of every storage type the reader maps (and views) as torch writes them, with the values."""
    import collections

    import torch

    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=generator)
    state = collections.OrderedDict(
        float32=torch.randn(3, 4, 2, 2, generator=generator),
        float64=torch.randn(3, generator=generator, dtype=torch.float64),
        float16=torch.randn(5, generator=generator).half(),
        bfloat16=torch.randn(5, generator=generator).bfloat16(),
        int64=torch.tensor([-(2**40), 7]),
        int32=torch.arange(6, dtype=torch.int32).reshape(2, 3),
        int16=torch.tensor([-3, 300], dtype=torch.int16),
        int8=torch.tensor([-5, 5], dtype=torch.int8),
        uint8=torch.arange(4, dtype=torch.uint8),
        bool=torch.tensor([True, False, True]),
        transposed=base.t(),  # a non-contiguous view
        rows=base[2:4],  # a view at an offset into a storage another tensor shares
        scalar=torch.tensor(42),
        empty=torch.zeros(0, 3),
        parameter=torch.nn.Parameter(torch.randn(2, 2, generator=generator)),
    )
    obj = {"meta": {"CLASSES": ("road", "sidewalk"), "PALETTE": [[128, 64, 128]], "iter": 80000},
           "state_dict": state}  # fmt: skip
    torch.save(obj, out / "dtypes_zip.pth")
    torch.save(obj, out / "dtypes_legacy.pth", _use_new_zipfile_serialization=False)
    # bfloat16 has no numpy dtype: the reader widens it to float32, exactly as torch's .float() does
    expected = {
        k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).numpy() for k, v in state.items()
    }
    np.savez(out / "dtypes_expected.npz", **expected)
    return ["dtypes_zip.pth", "dtypes_legacy.pth", "dtypes_expected.npz"]


def size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--depths", default="18,50,101", help="comma-separated ResNet depths (18,50,101)")
    parser.add_argument("--formats", default="zip,legacy", help="torch formats to save and convert")
    parser.add_argument("--images", type=int, default=1, help="full-resolution frames to compare (1)")
    parser.add_argument("--size", type=size, default=(1024, 2048), help="frame size HxW (1024x2048)")
    parser.add_argument("--calibration", type=int, default=4, help="frames for BatchNorm statistics (4)")
    parser.add_argument("--calibration-size", type=size, default=(512, 1024), help="their size (512x1024)")
    parser.add_argument("--python", type=Path, default=ROOT / ".venv" / "bin" / "python", help="our venv")
    parser.add_argument("--work", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    parser.add_argument(
        "--write-fixtures", default=None, metavar="DIR", help="write the test fixtures instead"
    )
    args = parser.parse_args()
    args.python = args.python.absolute()  # not resolve(): a venv python is a symlink that must stay one
    args.depths = [int(d) for d in args.depths.split(",")]
    args.formats = [f for f in args.formats.split(",") if f]
    unknown = [d for d in args.depths if d not in CONFIGS] + [f for f in args.formats if f not in FORMATS]
    if unknown:
        parser.error(f"unknown depth or format {unknown}: depths {sorted(CONFIGS)}, formats {FORMATS}")
    return write_fixtures(args) if args.write_fixtures else run_parity(args)


if __name__ == "__main__":
    raise SystemExit(main())
