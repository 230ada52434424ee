import doctest
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.models import features
from keras_resnet.models.features import feature_extractor, feature_info, freeze, unfreeze

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


video = _example("video_convlstm")
RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (8, 16, 32), "stem": "cifar", "shortcut": "A"}
# An ImageNet-stem network small enough for a test: four stages, strides 4..32.
TINY = {"block": "basic", "depths": (1, 2, 1, 1), "widths": (8, 16, 16, 32)}


def _resnet8(**kwargs):
    return kr.ResNet(RESNET8, include_top=False, input_shape=(32, 32, 3), **kwargs)


def _images(count=8, size=32, seed=0):
    return np.random.default_rng(seed).uniform(size=(count, size, size, 3)).astype("float32")


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _bn_statistics(model):
    return [
        v
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def _unchanged(before, variables):
    return [np.array_equal(b, a) for b, a in zip(before, _numpy(variables))]


def _summary(info):
    return [(i["level"], i["layer"], i["stride"], i["channels"]) for i in info]


def test_module_docstring_examples_run():
    for module in (features, video):
        assert doctest.testmod(module).failed == 0


# --- include_top=False backbones ------------------------------------------------------------


def check_pooling_reduces_the_feature_map(data_format):
    keras.config.set_image_data_format(data_format)
    shape, spatial = ((32, 32, 3), (1, 2)) if data_format == "channels_last" else ((3, 32, 32), (2, 3))
    x = _images().reshape((-1, *shape))
    maps = kr.ResNet(RESNET8, include_top=False, input_shape=shape)
    assert maps.output_shape == ((None, 8, 8, 32) if data_format == "channels_last" else (None, 32, 8, 8))
    expected = keras.ops.convert_to_numpy(maps(x))
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = kr.ResNet(RESNET8, include_top=False, pooling=pooling, input_shape=shape)
        pooled.set_weights(maps.get_weights())
        assert pooled.output_shape == (None, 32)
        np.testing.assert_allclose(pooled(x), reduce(expected, axis=spatial), rtol=1e-5, atol=1e-5)


def test_pooling_reduces_the_feature_map_of_the_same_weights():
    check_pooling_reduces_the_feature_map("channels_last")


def check_channels_first_pooling():
    check_pooling_reduces_the_feature_map("channels_first")


# --- feature levels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, reference, layers",
    [
        (
            kr.ResNet50,
            keras.applications.ResNet50,
            ["conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"],
        ),
        (
            kr.ResNet50V2,
            keras.applications.ResNet50V2,
            ["conv2_block3_preact_relu", "conv3_block4_preact_relu", "conv4_block6_preact_relu", "post_relu"],
        ),
    ],
)
def test_levels_are_keras_applications_layers_at_strides_4_to_32(ours, reference, layers):
    info = feature_info(ours(include_top=False, input_shape=(64, 64, 3)))
    assert [(i["level"], i["layer"]) for i in info] == list(zip(["C2", "C3", "C4", "C5"], layers))
    assert [i["stride"] for i in info] == [4, 8, 16, 32]
    # The same-named layers of keras.applications give the reference shapes.
    theirs = reference(include_top=False, weights=None, input_shape=(64, 64, 3))
    for i in info:
        side = 64 // i["stride"]
        assert tuple(theirs.get_layer(i["layer"]).output.shape) == (None, side, side, i["channels"])


@pytest.mark.parametrize(
    "build, expected",
    [
        # v1 takes each stage's last block output.
        (
            lambda: kr.ResNet18(include_top=False),
            [
                ("C2", "conv2_block2_out", 4, 64),
                ("C3", "conv3_block2_out", 8, 128),
                ("C4", "conv4_block2_out", 16, 256),
                ("C5", "conv5_block2_out", 32, 512),
            ],
        ),
        # Dilation: the same layers, the strides stop growing.
        (
            lambda: kr.ResNet18(include_top=False, output_stride=16),
            [
                ("C2", "conv2_block2_out", 4, 64),
                ("C3", "conv3_block2_out", 8, 128),
                ("C4", "conv4_block2_out", 16, 256),
                ("C5", "conv5_block2_out", 16, 512),
            ],
        ),
        (
            lambda: kr.ResNet18V2(include_top=False, output_stride=8),
            [
                ("C2", "conv2_block2_preact_relu", 4, 64),
                ("C3", "conv3_block2_preact_relu", 8, 128),
                ("C4", "conv4_block2_preact_relu", 8, 256),
                ("C5", "post_relu", 8, 512),
            ],
        ),
        # CIFAR networks: three stages at strides 1, 2, 4.
        (
            lambda: kr.ResNet20(include_top=False),
            [("C2", "conv2_block3_out", 1, 16), ("C3", "conv3_block3_out", 2, 32), ("C4", "conv4_block3_out", 4, 64)],
        ),
        (
            lambda: kr.Plain20(include_top=False),
            [("C2", "conv2_block3_out", 1, 16), ("C3", "conv3_block3_out", 2, 32), ("C4", "conv4_block3_out", 4, 64)],
        ),
        # v2 in keras.applications' layout strides in a stage's last block,
        # which with one block per stage is its only one.
        (
            lambda: _resnet8(preact=True),
            [
                ("C2", "conv2_block1_preact_relu", 1, 8),
                ("C3", "conv3_block1_preact_relu", 2, 8),
                ("C4", "post_relu", 4, 32),
            ],
        ),
        # v2 with the paper's layout: the map feeds the next stage's first block.
        (
            lambda: _resnet8(preact=True, downsample_at="first"),
            [
                ("C2", "conv3_block1_preact_relu", 1, 8),
                ("C3", "conv4_block1_preact_relu", 2, 16),
                ("C4", "post_relu", 4, 32),
            ],
        ),
        # v1 in the last-block layout: the map before the strided block.
        (
            lambda: kr.ResNet18(include_top=False, downsample_at="last"),
            [
                ("C2", "conv2_block1_out", 4, 64),
                ("C3", "conv3_block1_out", 8, 128),
                ("C4", "conv4_block1_out", 16, 256),
                ("C5", "conv5_block2_out", 32, 512),
            ],
        ),
        # Everything dilated: no stride to read the layout from; v2's default.
        (
            lambda: _resnet8(preact=True, output_stride=1),
            [
                ("C2", "conv2_block1_preact_relu", 1, 8),
                ("C3", "conv3_block1_preact_relu", 1, 8),
                ("C4", "post_relu", 1, 32),
            ],
        ),
        # A classifier on top changes nothing.
        (
            lambda: kr.ResNet(RESNET8, input_shape=(32, 32, 3)),
            [("C2", "conv2_block1_out", 1, 8), ("C3", "conv3_block1_out", 2, 16), ("C4", "conv4_block1_out", 4, 32)],
        ),
    ],
)
def test_feature_info(build, expected):
    assert _summary(feature_info(build())) == expected


def test_levels_are_recorded_at_build_and_survive_save_load_and_weights(tmp_path):
    model = kr.ResNet20(include_preprocessing=True, output_stride=2)
    expected = [("C2", "conv2_block3_out", 1, 16), ("C3", "conv3_block3_out", 2, 32), ("C4", "conv4_block3_out", 2, 64)]
    assert _summary(feature_info(model)) == expected
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert _summary(feature_info(loaded)) == expected
    x = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3)).astype("uint8")
    maps, reloaded = feature_extractor(model)(x), feature_extractor(loaded)(x)
    for level in ("C2", "C3", "C4"):
        np.testing.assert_allclose(reloaded[level], maps[level], rtol=1e-5, atol=1e-5)
    model.save_weights(tmp_path / "m.weights.h5")
    weighted = kr.ResNet20(weights=tmp_path / "m.weights.h5", output_stride=2)
    assert _summary(feature_info(weighted)) == expected


EXTRACTOR_OPTIONS = [{}, {"preact": True}, {"output_stride": 16}, {"preact": True, "output_stride": 8}]


def check_extractor_maps(data_format, kwargs, sizes=(64, 96)):
    keras.config.set_image_data_format(data_format)
    backbone = kr.ResNet(TINY, include_top=False, **kwargs)
    extractor = feature_extractor(backbone)
    info = feature_info(backbone)
    for size in sizes:
        x = _images(2, size)
        if data_format == "channels_first":
            x = x.transpose(0, 3, 1, 2)
        maps = extractor(x)
        assert list(maps) == [i["level"] for i in info] == ["C2", "C3", "C4", "C5"]
        for i in info:
            side = size // i["stride"]
            shape = (side, side, i["channels"]) if data_format == "channels_last" else (i["channels"], side, side)
            assert tuple(maps[i["level"]].shape) == (2, *shape)
        # The deepest level is the backbone's own output.
        np.testing.assert_allclose(maps["C5"], backbone(x), rtol=1e-5, atol=1e-5)


def check_channels_first_extractor_maps():
    for kwargs in (EXTRACTOR_OPTIONS[0], EXTRACTOR_OPTIONS[-1]):
        check_extractor_maps("channels_first", kwargs, sizes=(64,))


@pytest.mark.parametrize("kwargs", EXTRACTOR_OPTIONS)
def test_extractor_maps_have_the_reported_strides_and_channels(kwargs):
    check_extractor_maps("channels_last", kwargs)


def test_extractor_from_a_name_builds_the_backbone_without_top():
    extractor = feature_extractor("resnet20", levels=("C3", "C4"), input_shape=(32, 32, 3))
    assert extractor.name == "resnet20_features"
    assert {level: tuple(x.shape) for level, x in extractor.output.items()} == {
        "C3": (None, 16, 16, 32),
        "C4": (None, 8, 8, 64),
    }
    assert "predictions" not in [layer.name for layer in extractor.layers]


def test_extractor_on_an_input_tensor_shares_the_backbones_weights():
    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="scale")(inputs)
    backbone = kr.ResNet(RESNET8, include_top=False, input_tensor=scaled)
    extractor = feature_extractor(backbone, levels=("C2", "C4"))
    assert extractor.inputs == [inputs]
    assert {id(w) for w in extractor.weights} == {id(w) for w in backbone.weights}
    assert _summary(feature_info(backbone))[0] == ("C2", "conv2_block1_out", 1, 8)
    x = _images()
    before = keras.ops.convert_to_numpy(extractor(x)["C4"])
    np.testing.assert_allclose(before, backbone(x), rtol=1e-5, atol=1e-5)
    kernel = backbone.get_layer("conv4_block1_2_conv").kernel
    kernel.assign(kernel * 2.0)
    assert not np.allclose(extractor(x)["C4"], before)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m: feature_extractor(m, levels=("C2", "C5")),
            r"levels must be None or distinct names among 'C2', 'C3', 'C4'; received \('C2', 'C5'\)",
        ),
        (lambda m: feature_extractor(m, levels="C2"), r"levels must .* received 'C2'"),
        (lambda m: feature_extractor(m, levels=()), r"levels must .* received \(\)"),
        (lambda m: feature_extractor(m, levels=("C2", "C2")), r"levels must .* received \('C2', 'C2'\)"),
        (lambda m: feature_extractor(m, input_shape=(64, 64, 3)), r"builder keyword arguments .* \['input_shape'\]"),
        (lambda m: feature_extractor("resnet7"), r"model must be one of .* received 'resnet7'"),
        (
            lambda m: feature_info(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="mlp")),
            r"model must be a keras_resnet backbone .* received 'mlp'",
        ),
        (lambda m: unfreeze(m, stages=0), r"stages must be None or an integer from 1 to 3; received 0"),
        (lambda m: unfreeze(m, stages=4), r"stages must be None or an integer from 1 to 3; received 4"),
        (lambda m: unfreeze(m, stages=True), r"stages must .* received True"),
        (lambda m: unfreeze(m, stages="2"), r"stages must .* received '2'"),
        (lambda m: unfreeze(m, keep_bn_frozen="yes"), r"keep_bn_frozen must be True or False; received 'yes'"),
    ],
)
def test_bad_arguments_name_the_argument_value_and_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call(_resnet8())


# --- freezing ------------------------------------------------------------------------------


def _head_on(backbone):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


@pytest.mark.parametrize("frozen", [True, False])
def test_fit_on_a_frozen_backbone_runs_bn_in_inference_mode(frozen):
    keras.utils.set_random_seed(1)
    backbone = _resnet8()
    model = _head_on(backbone)
    x = _images(16)
    inference = model.predict(x, verbose=0)
    if frozen:
        freeze(backbone)
    before = _numpy(backbone.weights)
    statistics = _numpy(_bn_statistics(backbone))
    head = _numpy(model.get_layer("head").weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    # One full batch: the loss fit reports is that of its training-mode
    # forward pass (before the update), here against the inference outputs
    # shifted by 1, so exactly 1 when BatchNormalization runs in inference mode.
    loss = model.fit(x, inference + 1, batch_size=16, epochs=1, verbose=0).history["loss"][0]
    assert not any(_unchanged(head, model.get_layer("head").weights))
    assert (abs(loss - 1) < 1e-6) == frozen
    if frozen:
        assert all(_unchanged(before, backbone.weights))
        np.testing.assert_allclose(backbone(x, training=True), backbone(x, training=False), atol=1e-6)
    else:
        assert not any(_unchanged(statistics, _bn_statistics(backbone)))


def _trainable_layers(model):
    return {layer.name for layer in model.layers if layer.trainable and layer.weights}


@pytest.mark.parametrize("keep_bn_frozen", [True, False])
def test_unfreeze_top_stages(keep_bn_frozen):
    keras.utils.set_random_seed(2)
    backbone = freeze(_resnet8(preact=True))
    unfreeze(backbone, stages=2, keep_bn_frozen=keep_bn_frozen)
    convs = {"conv3_block1_1_conv", "conv3_block1_2_conv", "conv4_block1_1_conv", "conv4_block1_2_conv"}
    bns = {"conv3_block1_preact_bn", "conv3_block1_1_bn", "conv4_block1_preact_bn", "conv4_block1_1_bn", "post_bn"}
    assert _trainable_layers(backbone) == (convs if keep_bn_frozen else convs | bns)

    model = _head_on(backbone)
    x = _images(16)
    inference = model.predict(x, verbose=0)
    early = backbone.get_layer("conv1_conv").weights + backbone.get_layer("conv2_block1_1_conv").weights
    late = backbone.get_layer("conv4_block1_2_conv").weights
    early_before, late_before = _numpy(early), _numpy(late)
    statistics = _numpy(_bn_statistics(backbone))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loss = model.fit(x, inference + 1, batch_size=16, epochs=1, verbose=0).history["loss"][0]
    assert all(_unchanged(early_before, early))
    assert not any(_unchanged(late_before, late))
    assert all(_unchanged(statistics, _bn_statistics(backbone))) == keep_bn_frozen
    assert (abs(loss - 1) < 1e-6) == keep_bn_frozen


def test_unfreeze_everything_and_refreeze():
    backbone = freeze(_resnet8())
    assert not backbone.trainable_weights
    unfreeze(backbone)
    assert _trainable_layers(backbone) == {
        layer.name
        for layer in backbone.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    }
    assert "conv1_conv" in _trainable_layers(backbone)
    freeze(backbone)
    assert not backbone.trainable_weights and not backbone.trainable


# --- video example (examples/video_convlstm.py) -------------------------------------------


def test_moving_shapes_clips_move_in_the_labelled_direction():
    clips, labels = video.moving_shapes_clips(40, frames=6, seed=3)
    assert clips.shape == (40, 6, 32, 32, 3) and clips.dtype == np.float32
    assert clips.min() >= 0 and clips.max() <= 1
    assert np.bincount(labels).tolist() == [10, 10, 10, 10]
    again, same = video.moving_shapes_clips(40, frames=6, seed=3)
    np.testing.assert_array_equal(again, clips)
    np.testing.assert_array_equal(same, labels)
    assert not np.array_equal(video.moving_shapes_clips(40, frames=6, seed=4)[0], clips)
    # The square differs from the background by at least 0.3 per channel,
    # the noise has a standard deviation of 0.05.
    background = np.median(clips, axis=(2, 3), keepdims=True)
    square = (np.abs(clips - background) > 0.15).all(axis=-1)
    rows, cols = np.indices((32, 32))
    area = square.sum((2, 3))
    centre = np.stack([(square * rows).sum((2, 3)) / area, (square * cols).sum((2, 3)) / area], -1)
    # Steps are at least 2 pixels: the square travels 10 or more along its
    # direction and (but for a stray noisy pixel) nothing across it.
    travel = centre[:, -1] - centre[:, 0]
    motion = np.where(np.abs(travel) >= 10, np.sign(travel), np.where(np.abs(travel) < 0.5, 0, np.nan))
    expected = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
    np.testing.assert_array_equal(motion, [expected[video.DIRECTIONS[label]] for label in labels])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"count": -1}, r"count must be a non-negative integer; received -1"),
        ({"count": 4, "frames": 1}, r"frames must be an integer from 2 to 17 for image_size=32; received 1"),
        ({"count": 4, "image_size": 8}, r"image_size must be an integer of at least 16; received 8"),
    ],
)
def test_moving_shapes_clips_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        video.moving_shapes_clips(**kwargs)


def test_video_classifier_validates_arguments():
    with pytest.raises(ValueError, match=r"backbone must return a 4D feature map .* \(None, 32\)"):
        video.video_classifier(_resnet8(pooling="avg"), 4, frames=4)
    with pytest.raises(ValueError, match=r"frames must be a positive integer; received 0"):
        video.video_classifier(_resnet8(), 4, frames=0)


def test_video_model_trains_the_head_on_a_frozen_backbone_then_the_backbone():
    keras.utils.set_random_seed(0)
    clips, labels = video.moving_shapes_clips(16, frames=4, seed=0)
    backbone = _resnet8()
    model = video.video_classifier(backbone, len(video.DIRECTIONS), frames=4)
    assert model.output_shape == (None, 4)
    head = model.get_layer("convlstm")
    for prepare, backbone_trains in ((freeze, False), (unfreeze, True)):
        prepare(backbone)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        parameters = [w for w in backbone.weights if all(w is not s for s in _bn_statistics(backbone))]
        before, statistics, head_before = (_numpy(parameters), _numpy(_bn_statistics(backbone)), _numpy(head.weights))
        model.fit(clips, labels, batch_size=8, epochs=1, verbose=0)
        assert not any(_unchanged(head_before, head.weights))
        assert all(_unchanged(statistics, _bn_statistics(backbone)))
        changed = not all(_unchanged(before, parameters))
        assert changed == backbone_trains


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_video_example_runs_on_the_jax_backend():
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "video_convlstm.py"),
            "--clips",
            "8",
            "--frames",
            "3",
            "--epochs",
            "1",
            "--batch-size",
            "8",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["frozen"]["backbone_parameters_changed"] is False
    assert summary["frozen"]["bn_statistics_changed"] is False
    assert summary["fine_tuned"]["backbone_parameters_changed"] is True
    assert summary["fine_tuned"]["bn_statistics_changed"] is False


# --- feature pyramid example ----------------------------------------------------------------


def test_feature_pyramid_example_builds_p2_to_p5_and_trains():
    result = _example("feature_pyramid").main(
        ["--model", "resnet18", "--output-stride", "16", "--images", "8", "--epochs", "1", "--batch-size", "8"]
    )
    assert result["pyramid"] == {
        "P5": (None, 4, 4, 32),
        "P4": (None, 4, 4, 32),
        "P3": (None, 8, 8, 32),
        "P2": (None, 16, 16, 32),
    }
    assert 0.0 <= result["val_iou"] <= 1.0
