"""The optimizer and the training step, and the one builder of a trainable model that `bench train` and
`bench perf train` share (precision, SyncBN, compiled optimizer)."""

from __future__ import annotations

from bench.training.losses import pixel_accuracy, segmentation_loss, split_outputs, valid_pixels
from bench.training.recipes import AUX_WEIGHT, WEIGHT_DECAY

MOMENTUM = 0.9
POLY_POWER = 0.9


def make_optimizer(lr: float, steps: int, weight_decay: float = WEIGHT_DECAY):
    """SGD + momentum with a poly schedule; decay skips BatchNorm scales/offsets and biases."""
    import keras

    schedule = keras.optimizers.schedules.PolynomialDecay(
        lr, decay_steps=steps, end_learning_rate=0.0, power=POLY_POWER
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=MOMENTUM, weight_decay=weight_decay or None)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def make_train_step(model, optimizer, aux_weight: float = AUX_WEIGHT, jit: bool = False, strategy=None):
    """One SGD step as a `tf.function`: (images, labels) -> dict of loss terms and pixel accuracy.

    Under a `tf.distribute` strategy (default: the current one) the inputs are per-replica values (see
    `strategy.experimental_distribute_values_from_function`; plain tensors for one replica); each replica
    divides its loss by the global count of valid pixels, so the all-reduced (summed) gradients and the
    returned sums are those of one process on the whole global batch.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    add = tf.distribute.ReduceOp.SUM

    def replica_step(images, labels):
        context = tf.distribute.get_replica_context()
        count = context.all_reduce(add, valid_pixels(labels))
        with tf.GradientTape() as tape:
            logits, aux = split_outputs(model(images, training=True))
            main = segmentation_loss(logits, labels, count)
            aux_loss = segmentation_loss(aux, labels, count) if aux is not None else tf.constant(0.0)
            total = main + aux_weight * aux_loss
            if model.losses:  # regularisers: once per global step, shared out over the replicas
                total += tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) / replicas
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {
            "loss": total,
            "main_loss": main,
            "aux_loss": aux_loss,
            "pixel_acc": pixel_accuracy(logits, labels, count),
        }

    @tf.function(jit_compile=jit)
    def step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels))
        return {key: strategy.reduce(add, value, axis=None) for key, value in per_replica.items()}

    return step


def build_trainable(
    model: str,
    preset: str | None,
    options: dict | None,
    *,
    strategy,
    accelerate: bool,
    lr: float,
    steps: int,
    weight_decay: float = WEIGHT_DECAY,
    sync_bn: bool = True,
):
    """(network with its auxiliary head, compiled SGD optimizer, SyncBN layers swapped in) built under
    `strategy`'s scope; `accelerate` computes in bfloat16 with float32 weights (models/precision.py)."""
    from bench.sources import keras_checkpoint as ckpt
    from bench.training.strategy import synchronize_batch_norm

    with strategy.scope():
        precision = "bf16" if accelerate else "fp32"
        net = ckpt.rebuild(
            {"model": model, "preset": preset, "options": dict(options or {})},
            aux_head=True,
            precision=precision,
        )
        synced = synchronize_batch_norm(net) if sync_bn and strategy.num_replicas_in_sync > 1 else 0
        optimizer = make_optimizer(lr, steps, weight_decay)
        net.compile(optimizer=optimizer)
        optimizer.build(net.trainable_variables)
    return net, optimizer, synced
