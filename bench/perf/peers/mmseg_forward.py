"""The PyTorch peer for `bench perf model --peer mmseg`: mmsegmentation's own PSPNet-R50-D8 on torch CPU.

Run by the parity venv's interpreter (`.venv-parity/bin/python bench/perf/peers/mmseg_forward.py`) as a child
process of the benchmark, never imported by the project: it needs torch and mmsegmentation, not TensorFlow.
The model is built as mmsegmentation builds it (its registry, the `pspnet_r50-d8.py` base config shipped in
the wheel, BatchNorm instead of SyncBN in one process), with random weights: speed does not depend on them.

Protocol (one JSON object per line, so the parent can interleave our passes with the peer's and both see
the same machine load): after building, the child prints {"ready": true, ...facts}; then for each line
"fp32" or "bf16" on stdin it runs one timed forward pass (extract_feat + decode_head + bilinear resize to
the input, `align_corners=False`, as mmseg's whole-image inference; bf16 through `torch.autocast`) and
prints {"precision": ..., "seconds": wall, "cpu_seconds": this process's CPU time} or {"precision": ...,
"error": ...}; "quit" or EOF ends it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

CONFIG = Path("configs/_base_/models/pspnet_r50-d8.py")
# Names that mmseg modules import from mmcv.ops at import time; PSPNet uses none of them (mmcv-lite has no
# compiled ops), so a stub module holding placeholders lets `register_all_modules` import everything.
MMCV_OPS_NAMES = (
    "CrissCrossAttention",
    "DeformConv2d",
    "ModulatedDeformConv2d",
    "MultiScaleDeformableAttention",
    "PSAMask",
    "SAConv2d",
    "batched_nms",
    "point_sample",
    "sigmoid_focal_loss",
)


def _stub_mmcv_ops() -> None:
    ops = types.ModuleType("mmcv.ops")

    def missing(*_args, **_kwargs):
        raise RuntimeError("mmcv.ops is stubbed in the peer benchmark: PSPNet does not use it")

    for name in MMCV_OPS_NAMES:
        setattr(ops, name, type(name, (), {"__init__": missing}) if name[0].isupper() else missing)

    def other(name: str):  # any other name a module asks for; dunder lookups (inspect's) fail as usual
        if name.startswith("__"):
            raise AttributeError(name)
        return missing

    ops.__getattr__ = other
    sys.modules["mmcv.ops"] = ops


def build_model():
    """mmsegmentation's PSPNet-R50-D8 in eval mode, from the config inside the installed wheel."""
    _stub_mmcv_ops()
    import mmseg
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(str(Path(mmseg.__file__).parent / ".mim" / CONFIG))
    model_cfg = cfg.model
    model_cfg.pretrained = None  # no download; weights stay at their random initialisation
    for part in ("backbone", "decode_head", "auxiliary_head"):
        model_cfg[part]["norm_cfg"] = dict(type="BN", requires_grad=True)
    return MODELS.build(model_cfg).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x1024", help="input HxW")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, required=True, help="torch intra-op threads")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model()
    images = torch.randn(args.batch, 3, height, width)

    def forward() -> None:
        with torch.no_grad():
            logits = model.decode_head(model.extract_feat(images))
            F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False).float()

    import mmseg

    facts = {
        "ready": True,
        "torch": torch.__version__,
        "mmseg": mmseg.__version__,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "params_without_aux": sum(
            p.numel() for n, p in model.named_parameters() if not n.startswith("auxiliary_head.")
        ),
    }
    print(json.dumps(facts), flush=True)
    for line in sys.stdin:
        precision = line.strip()
        if precision in ("", "quit"):
            break
        reply: dict[str, object] = {"precision": precision}
        try:
            if precision not in ("fp32", "bf16"):
                raise ValueError(f"unknown precision {precision!r}: fp32 or bf16")
            autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
            began, cpu = time.perf_counter(), time.process_time()
            with autocast:
                forward()
            reply["seconds"] = time.perf_counter() - began
            reply["cpu_seconds"] = time.process_time() - cpu
        except Exception as exc:  # reported to the parent, which prints it beside the figures
            reply["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
