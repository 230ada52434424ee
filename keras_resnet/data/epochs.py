"""Seeded epochs: the order of each pass over a source is a pure function of `(seed, epoch)`.

So a seeded pipeline gives the same batches on every run and new ones in every epoch, and a pipeline that
starts at a later epoch serves exactly what an uninterrupted run saw there (exact resume). A pass also
records the images that fail to decode, so that none is replaced without the run knowing which.
"""

from __future__ import annotations

import functools
import random
from typing import Any


def seed_or_random(seed: int | None) -> int:
    """`seed` as an int, or a fresh random one for `None`."""
    return random.SystemRandom().randrange(2**31) if seed is None else int(seed)


def epoch_seed(seed: int, epoch: Any) -> Any:
    """The stateless seed of one epoch: an int64 tensor of shape `(2,)`."""
    import tensorflow as tf

    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])


def epoch_numbers(seed: int, epochs: range | None) -> Any:
    """A dataset of the epoch numbers of `epochs`, or (`None`) of one new random number on every pass."""
    import tensorflow as tf

    if epochs is None:
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return tf.data.Dataset.range(epochs.start, epochs.stop)


def check_epochs(epochs: range | None) -> None:
    if epochs is not None and (
        not isinstance(epochs, range) or epochs.step != 1 or not 0 <= epochs.start < epochs.stop
    ):
        raise ValueError(f"epochs must be None or a range(first, stop) with 0 <= first < stop; received {epochs!r}")


def _ordered(source, seed, window):
    """A source's `(key, label)` pairs in the order of one pass: stored (`seed` None), or shuffled by `seed`.

    In-memory keys that fit in one window get one exact permutation; others are shuffled window by window.
    """
    import tensorflow as tf

    if seed is None:
        return source.elements
    if source.tensors is not None and window >= source.size:
        order = tf.random.experimental.stateless_shuffle(tf.range(source.size, dtype=tf.int64), seed)
        return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(tensor, order) for tensor in source.tensors))

    def permute(index, pair):
        keys, labels = pair
        count = tf.shape(labels, out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), tf.random.experimental.stateless_fold_in(seed, index)
        )
        return tf.gather(keys, order), tf.gather(labels, order)

    return source.elements.batch(window).enumerate().map(permute).unbatch()


def epoch_images(source: Any, seed: Any = None, *, shuffle_buffer: int | None = None, parallel: bool = True) -> Any:
    """One pass over a source's decoded `(image, label)` pairs, in the order of the epoch seed `seed`.

    An image that fails to decode is left out and recorded in `source.decode_failures`; the pass then ends
    with as many images from its start, so that it always holds `len(source)` examples.
    """
    import tensorflow as tf

    window = shuffle_buffer or source.shuffle_buffer

    def load(position, pair):
        key, label = pair
        return position, source.load(key), label

    calls = tf.data.AUTOTUNE if parallel else None
    decoded = _ordered(source, seed, window).enumerate().map(load, num_parallel_calls=calls)
    decoded = decoded.ignore_errors(log_warning=True)
    if source.tensors is None or source.tensors[0].dtype == tf.string:  # keys that may fail to decode
        decoded = _record_failures(source, decoded, seed, window)
    images = decoded.map(lambda position, image, label: (image, label))
    # repeat() stops at once if a whole pass yields nothing, so this cannot loop forever.
    return images.repeat().take(source.size)


def _record_failures(source, decoded, seed, window):
    """Passes `(position, image, label)` on and records the positions missing from it: the failed decodes.

    Positions come in order, so a gap is a failure; an end marker at `len(source)` shows those at the end.
    Each failure is recorded once per pass as `(pass, position, name)`: the name is the file path of in-memory
    keys (the pass's order is recomputed from its seed), else `"example N"`.
    """
    import tensorflow as tf

    @functools.lru_cache(maxsize=1)
    def names(pass_id):
        if source.tensors is None:
            return None
        pairs = _ordered(source, None if pass_id is None else tf.constant(pass_id, tf.int64), window)
        return [key.decode() for key, _ in pairs.as_numpy_iterator()]

    def record(first, stop, *seed_value):
        pass_id = tuple(seed_value[0].numpy().tolist()) if seed_value else None
        ordered = names(pass_id)
        for position in range(int(first), int(stop)):
            entry = (pass_id, position, f"example {position}" if ordered is None else ordered[position])
            if entry not in source.decode_failures:
                source.decode_failures.append(entry)
        return stop

    seed_input = [] if seed is None else [seed]
    end = tf.data.Dataset.from_tensors(
        (tf.constant(source.size, tf.int64), tf.zeros([0, 0, 3], tf.uint8), tf.constant(-1, tf.int32))
    )

    def check(last, element):
        position = element[0]
        stop = tf.cond(
            position > last + 1,
            lambda: tf.py_function(record, [last + 1, position, *seed_input], tf.int64),
            lambda: position,
        )
        return tf.maximum(stop, position), element

    checked = decoded.concatenate(end).scan(tf.constant(-1, tf.int64), check)
    return checked.filter(lambda position, image, label: position < source.size)
