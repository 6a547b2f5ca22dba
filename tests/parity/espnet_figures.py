"""The figures of the real ESPNet / ESPNetv2 weights against their authors' outputs on the shared real frame.

    .venv/bin/python tests/parity/espnet_figures.py [--shared ../shared] [--work DIR]

Per model: max |delta logits| of our network on the authors' exact input (and how far beyond the float16
storage rounding), arg-max agreement from their input (all 20 channels against their arg-max PNG; our 19
train IDs against the arg-max over channels 0-18 of their logits), and arg-max agreement of
`python -m bench convert` + `python -m bench predict` from the PNG at 2048x1024 (where they do not predict
their background channel, and against their 19-channel arg-max repeated to full size). The same checks with
thresholds are tests/test_espnet_parity.py; this prints the numbers (for the README). No torch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

FRAME = "frankfurt_000000_000294"
MODELS = {"espnet": "espnet_p_2_q_8", "espnetv2": "espnetv2_s_2.0_city_1024x512"}


def bench(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def figures(name: str, shared: Path, work: Path) -> dict[str, float]:
    import keras

    from bench.sources.convert import converter, torch_reader
    from data.labels import LABEL_TO_TRAIN

    stem = MODELS[name]
    weights = shared / "weights" / f"{stem}.pth"
    folder = shared / "fixtures/real-frame/reference" / stem
    stored = np.load(folder / f"{FRAME}_logits.npz")
    theirs = stored["logits"].transpose(1, 2, 0)
    their_argmax = np.asarray(Image.open(folder / f"{FRAME}_argmax.png"))
    theirs_19 = theirs[..., :19].argmax(-1)

    state, _ = torch_reader.read_state_dict(weights)
    model, _ = converter.build_converted(state, weights)
    both = keras.Model(model.input, [model.get_layer("logits").input, model.output])
    network, logits = (
        np.asarray(a)[0] for a in both(stored["input"].transpose(1, 2, 0)[None], training=False)
    )
    error = np.abs(network - theirs.astype(np.float32))
    storage = np.spacing(np.abs(theirs)).astype(np.float32) / 2

    dataset = work / name / "data"
    (dataset / "leftImg8bit/val/frankfurt").mkdir(parents=True)
    (dataset / "gtFine/val/frankfurt").mkdir(parents=True)
    image = shared / f"fixtures/real-frame/leftImg8bit/val/frankfurt/{FRAME}_leftImg8bit.png"
    (dataset / "leftImg8bit/val/frankfurt" / image.name).symlink_to(image)
    blank = np.zeros((1024, 2048), np.uint8)  # listing needs a GT file; nothing is scored
    Image.fromarray(blank).save(dataset / f"gtFine/val/frankfurt/{FRAME}_gtFine_labelIds.png")
    checkpoint, out = work / name / f"{stem}.keras", work / name / "pred"
    bench("convert", str(weights), "--out", str(checkpoint))
    bench(
        "predict",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--no-progress",
    )
    ours = LABEL_TO_TRAIN[np.asarray(Image.open(out / f"{FRAME}_leftImg8bit.png"))]
    full = their_argmax.repeat(2, 0).repeat(2, 1)
    valid = full != 19
    return {
        "max abs delta logits": float(error.max()),
        "max beyond float16 rounding": float(np.max(error - storage)),
        "argmax20 vs their PNG (from input)": float(np.mean(network.argmax(-1) == their_argmax)),
        "argmax19 vs their 0-18 (from input)": float(np.mean(logits.argmax(-1) == theirs_19)),
        "their background pixels": float(np.mean(their_argmax == 19)),
        "bench predict vs their PNG, non-background": float(np.mean(ours[valid] == full[valid])),
        "bench predict vs their 0-18": float(np.mean(ours == theirs_19.repeat(2, 0).repeat(2, 1))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    parser.add_argument("--work", type=Path, default=None, help="folder for checkpoints and predictions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows = {name: figures(name, args.shared.resolve(), work) for name in MODELS}
    print("| figure | " + " | ".join(MODELS.values()) + " |")
    print("| --- |" + " ---: |" * len(MODELS))
    for key in next(iter(rows.values())):
        print(f"| {key} | " + " | ".join(f"{rows[n][key]:.6g}" for n in MODELS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
