"""Tests for keras_resnet.training.evaluation: averaged scores of known models against numpy, top-k error."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet import data
from keras_resnet.training import evaluation

CLASSES = 7


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def fixed_dense(inputs, features, seed, input_scale=1.0):
    """Dense softmax layer with fixed random weights (logits of about unit size); returns outputs, weights, bias."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1 / (input_scale * np.sqrt(features)), (features, CLASSES)).astype(np.float32)
    bias = rng.normal(0, 0.1, CLASSES).astype(np.float32)
    layer = keras.layers.Dense(CLASSES, activation="softmax")
    outputs = layer(inputs)
    layer.set_weights([weights, bias])
    return outputs, weights, bias


def pixel_model(height, width, seed=0):
    """softmax(flatten(image) @ weights + bias): sensitive to every pixel's position, so to crops and flips."""
    inputs = keras.Input((height, width, 3))
    outputs, weights, bias = fixed_dense(keras.layers.Flatten()(inputs), height * width * 3, seed, 128.0)

    def expected(view):
        return softmax(view.reshape(-1).astype(np.float64) @ weights + bias)

    return keras.Model(inputs, outputs), expected


def size_model(seed=0):
    """Fully convolutional: softmax([mean colour / 255, height / 100, width / 100] @ weights + bias)."""
    inputs = keras.Input((None, None, 3))

    def features(images):
        shape = keras.ops.cast(keras.ops.shape(images)[1:3], "float32") / 100.0
        size = keras.ops.broadcast_to(shape, (keras.ops.shape(images)[0], 2))
        return keras.ops.concatenate([keras.ops.mean(images, axis=(1, 2)) / 255.0, size], axis=-1)

    outputs, weights, bias = fixed_dense(keras.layers.Lambda(features)(inputs), 5, seed)

    def expected(colour, height, width):
        return softmax(np.concatenate([colour / 255.0, [height / 100.0, width / 100.0]]) @ weights + bias)

    return keras.Model(inputs, outputs), expected


def dataset(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int32)))


def ten_views(image, size):
    """Independent numpy 10-crop: corners, centre, and their mirror images."""
    height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size), (top, left)]
    crops = [image[y : y + size, x : x + size] for y, x in corners]
    return crops + [crop[:, ::-1] for crop in crops]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)


def test_top_k_error_counts_labels_outside_the_k_best():
    scores = np.array([[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.1, 0.2, 0.25, 0.15], [0.05, 0.1, 0.2, 0.3, 0.35]])
    labels = np.array([1, 2, 0])
    assert evaluation.top_k_error(scores, labels, k=1) == pytest.approx(2 / 3)
    assert evaluation.top_k_error(scores, labels, k=3) == pytest.approx(1 / 3)
    assert evaluation.top_k_error(scores, labels, k=5) == 0.0


def labels_ranked(scores, ranks):
    """For each image the label whose averaged score has the given rank (0 = best)."""
    return np.argsort(-scores, axis=1)[np.arange(len(ranks)), ranks]


@pytest.mark.parametrize("method", ["ten_crop", "center"])
def test_crop_methods_average_the_model_outputs_over_their_views(images, method):
    model, expected = pixel_model(32, 32)
    views = [ten_views(image, 32) for image in images]
    if method == "center":
        views = [image_views[4:5] for image_views in views]
    wanted = np.array([np.mean([expected(view) for view in image_views], axis=0) for image_views in views])
    labels = labels_ranked(wanted, [0, 0, 1, 4, 5, 6])  # top-1 error 4/6, top-5 error 2/6
    # resize_size equal to the shorter side leaves the images as they are, so the views are plain slices.
    result = evaluation.evaluate(model, dataset(images, labels), method=method, crop_size=32, resize_size=40)
    np.testing.assert_allclose(result["scores"], wanted, atol=1e-6)
    np.testing.assert_array_equal(result["labels"], labels)
    assert result["top1_error"] == pytest.approx(4 / 6) and result["top5_error"] == pytest.approx(2 / 6)


def test_ten_crop_differs_from_centre_crop(images):
    model, _ = pixel_model(32, 32)
    results = [
        evaluation.evaluate(model, dataset(images, np.zeros(6)), method=method, crop_size=32, resize_size=40)
        for method in ("ten_crop", "center")
    ]
    assert np.abs(results[0]["scores"] - results[1]["scores"]).max() > 1e-3


def test_multi_scale_averages_the_scores_of_every_scale():
    colours = np.array([[10, 200, 30], [250, 5, 120], [90, 90, 90]], np.float64)
    images = np.broadcast_to(colours[:, None, None], (3, 40, 48, 3)).astype(np.uint8)
    model, expected = size_model()
    scales = (24, 32, 56)
    # Shorter side 40 -> s, longer side 48 -> round(48 * s / 40): 24x29, 32x38, 56x67.
    sizes = [(scale, round(48 * scale / 40)) for scale in scales]
    assert sizes == [(24, 29), (32, 38), (56, 67)]
    wanted = np.array([np.mean([expected(colour, h, w) for h, w in sizes], axis=0) for colour in colours])
    labels = labels_ranked(wanted, [0, 2, 6])
    result = evaluation.evaluate(model, dataset(images, labels), method="multi_scale", scales=scales)
    np.testing.assert_allclose(result["scores"], wanted, atol=1e-6)
    assert result["top1_error"] == pytest.approx(2 / 3) and result["top5_error"] == pytest.approx(1 / 3)


def test_multi_scale_flip_averages_each_image_and_its_mirror(images):
    model, expected = pixel_model(40, 48)
    result = evaluation.evaluate(model, dataset(images, np.zeros(6)), method="multi_scale", scales=(40,), flip=True)
    wanted = np.array([(expected(image) + expected(image[:, ::-1])) / 2 for image in images])
    np.testing.assert_allclose(result["scores"], wanted, atol=1e-6)


def test_preprocess_runs_on_the_views_before_the_model(images):
    model, expected = pixel_model(32, 32)
    normalize = data.normalizer(data.IMAGENET_MEAN, channel_order="bgr")
    result = evaluation.evaluate(
        model, dataset(images, np.zeros(6)), method="center", crop_size=32, resize_size=40, preprocess=normalize
    )
    crops = images[:, 4:36, 8:40] - np.array(data.IMAGENET_MEAN)
    wanted = np.array([expected(crop[..., ::-1]) for crop in crops])
    np.testing.assert_allclose(result["scores"], wanted, atol=1e-6)


def test_images_of_different_sizes_are_scored_one_by_one():
    model, _ = size_model()
    shapes = [(40, 48), (64, 36)]
    images = tf.data.Dataset.from_generator(
        lambda: ((np.full(shape + (3,), 100, np.uint8), 1) for shape in shapes),
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((), tf.int32)),
    )
    for method in evaluation.METHODS:
        result = evaluation.evaluate(model, images, method=method, crop_size=32, resize_size=36, scales=(32, 48))
        assert result["scores"].shape == (2, CLASSES)
        np.testing.assert_allclose(result["scores"].sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "five_crop"}, "method must be one of 'center', 'ten_crop', 'multi_scale'; received 'five_crop'"),
        ({"crop_size": 48, "resize_size": 40}, r"resize_size must be at least crop_size \(48\); received 40"),
        ({"scales": ()}, r"scales must be a non-empty sequence of positive integers; received \(\)"),
        ({"scales": (224, 0)}, r"scales must be a non-empty sequence of positive integers; received \(224, 0\)"),
        ({"crop_size": 0}, "crop_size must be a positive integer; received 0"),
    ],
)
def test_bad_arguments_name_the_argument_the_value_and_what_is_allowed(images, options, message):
    model, _ = pixel_model(32, 32)
    with pytest.raises(ValueError, match=message):
        evaluation.evaluate(model, dataset(images, np.zeros(6)), **options)


def test_batched_or_empty_datasets_are_refused(images):
    model, _ = pixel_model(32, 32)
    batched = r"images must be an unbatched dataset .* received images of shape \(None, 40, 48, 3\)"
    with pytest.raises(ValueError, match=batched):
        evaluation.evaluate(model, dataset(images, np.zeros(6)).batch(2))
    with pytest.raises(ValueError, match="images must hold at least one"):
        evaluation.evaluate(model, dataset(images, np.zeros(6)).take(0), crop_size=32, resize_size=40)
    with pytest.raises(ValueError, match=r"scores must have shape \(count, classes\)"):
        evaluation.top_k_error(np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError, match="k must be a positive integer; received 0"):
        evaluation.top_k_error(np.zeros((3, 2)), [0, 1, 1], k=0)
