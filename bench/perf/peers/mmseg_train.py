"""The PyTorch training-step peer for `bench perf train --peer mmseg`: mmsegmentation's own PSPNet-R50-D8
training step on torch CPU.

Run by the parity venv's interpreter (`.venv-parity/bin/python bench/perf/peers/mmseg_train.py ...`) as a
child of the benchmark, never imported by the project. The model is `mmseg_forward.build_model()` (mmseg's
registry and base config, BatchNorm instead of SyncBN) in train mode; one step is what mmengine's
`OptimWrapper.update_params` runs for it: `model(inputs, data_samples, mode="loss")` (decode head
cross-entropy plus 0.4 x the auxiliary head's, ignore index 255), `parse_losses`, backward, SGD (lr 0.01,
momentum 0.9, weight decay 5e-4, mmseg's schedule), zero_grad. Inputs are already normalised (its data
preprocessor is left out, as ours takes normalised batches); labels are random train IDs with some 255.

Protocol as mmseg_forward.py: {"ready": true, ...} after building, then for each stdin line "fp32" or "bf16"
one timed step (bf16: forward and loss under `torch.autocast`, backward outside it, as AMP does) answered
with {"precision", "seconds", "cpu_seconds", "loss"} or {"precision", "error"}; "quit" or EOF ends it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling, not the package

from mmseg_forward import build_model  # noqa: E402


def _data_samples(labels):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    samples = []
    height, width = labels.shape[-2:]
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None])
        sample.set_metainfo(
            {"img_shape": (height, width), "pad_shape": (height, width), "ori_shape": (height, width)}
        )
        samples.append(sample)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="128x256", help="training crop HxW")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, required=True, help="torch intra-op threads")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(args.batch, 3, height, width)
    labels = torch.randint(0, 19, (args.batch, height, width))
    labels[:, : height // 8] = 255  # some ignored pixels, as real crops have
    samples = _data_samples(labels)

    def step(precision: str) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            losses = model(images, samples, mode="loss")
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return float(loss.detach())

    import mmseg

    facts = {
        "ready": True,
        "torch": torch.__version__,
        "mmseg": mmseg.__version__,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
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
            began, cpu = time.perf_counter(), time.process_time()
            reply["loss"] = step(precision)
            reply["seconds"] = time.perf_counter() - began
            reply["cpu_seconds"] = time.process_time() - cpu
        except Exception as exc:  # reported to the parent, which prints it beside the figures
            reply["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
