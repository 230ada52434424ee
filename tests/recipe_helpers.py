"""Tiny models and data shared by the recipe, callback, backup and run-folder tests."""

import keras
import numpy as np


def tiny_model(activation=None):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation=activation),
        ]
    )


def tiny_data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 3), dtype="float32"), rng.integers(0, 3, n)


def compiled(learning_rate=0.1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.SGD(learning_rate), loss, metrics=["accuracy"])
    return model
