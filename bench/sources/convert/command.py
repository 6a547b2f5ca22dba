"""`python -m bench convert SRC --out DST.keras`: a published PyTorch checkpoint -> a checkpoint of ours
(bench/sources/convert/converter.py does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.sources.convert.converter import SOURCES, convert
from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src", help="PyTorch checkpoint (.pth, zip or legacy format): mmseg's PSPNet, ESPNet or ESPNetv2"
    )
    parser.add_argument("--out", required=True, help="checkpoint to write (.keras)")
    parser.add_argument("--source", choices=sorted(SOURCES), default=None, help="layout (default: detect)")


def run(args: argparse.Namespace) -> int:
    from bench.common.atomic import check_writable
    from bench.common.tensorflow_import import import_tensorflow

    out = Path(args.out)
    if out.suffix != ".keras":
        raise UserError(f"--out {out}: give a .keras file name (Keras saves only that format)")
    check_writable(out, "--out", folder=False)  # a folder named x.keras, a read-only or full disk: now
    import_tensorflow()
    metadata = convert(args.src, out, source=args.source)
    options = metadata["options"]
    shown = f"pspnet R-{options['depth']}" if "depth" in options else f"{metadata['model']} {options}"
    print(
        f"wrote {out}: {shown} ({metadata['source']['format']} layout, "
        f"{metadata['source']['tensors']} tensors, {metadata['num_classes']} classes"
        f"{', auxiliary head' if metadata['aux_head'] else ''})"
    )
    if "published" in metadata:
        print(f"recognised: {metadata['published']['file']} ({metadata['published']['config']})")
    return 0
