"""The Cityscapes-C robustness benchmark: corrupted frames made on the fly, scored per (corruption, severity).

- `plan`: what a sweep computes (frames, units, seeds, presets) and the manifest that names it;
- `state`: the output folder: manifest check, one atomically written sums file per finished unit, unit locks;
- `frames`: corrupted frames made in worker processes ahead of the model;
- `replicas`: the model (`open_checkpoint`) on the local replicas of a tf.distribute strategy;
- `sweep`: the loop, scoring each unit with the prediction loop's sink (`StreamingEvaluator`);
- `report`: table, mPC/rPC, CSV rows, heat map; `command`: `python -m bench robustness`.
"""
