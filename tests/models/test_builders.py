import pathlib
import re

import keras
import numpy as np
import pytest
from backend_helpers import call_channels_first

import keras_resnet as kr


def count_params(model):
    """Trainable parameters, as the paper counts them."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


@pytest.mark.parametrize(
    "builder, expected",
    [
        (kr.ResNet18, 11_689_512),
        (kr.ResNet34, 21_797_672),
        (kr.ResNet50, 25_557_032),
        (kr.ResNet101, 44_549_160),
        (kr.ResNet152, 60_192_808),
        (kr.ResNet20, 269_722),
        (kr.ResNet56, 853_018),
        (kr.ResNet110, 1_727_962),
    ],
)
def test_trainable_parameters_equal_the_papers_networks(builder, expected):
    assert count_params(builder()) == expected


def test_issue_usage_examples():
    model = kr.ResNet50(weights=None)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 1000)
    assert model.name == "resnet50"
    backbone = kr.ResNet50(include_top=False, pooling="avg", input_shape=(160, 160, 3))
    assert backbone.output_shape == (None, 2048)
    cifar = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
    assert cifar.output_shape == (None, 10)
    probabilities = cifar.predict(np.random.rand(2, 32, 32, 3).astype("float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["ResNet50", "ResNet50V2"])
def test_layer_names_cover_keras_applications(name):
    ours = getattr(kr, name)(input_shape=(64, 64, 3))
    theirs = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3))
    assert {layer.name for layer in ours.layers if layer.weights} == {
        layer.name for layer in theirs.layers if layer.weights
    }


def test_v2_has_the_same_parameters_as_keras_applications():
    ours = kr.ResNet50V2(input_shape=(64, 64, 3))
    theirs = keras.applications.ResNet50V2(weights=None, input_shape=(64, 64, 3))
    assert ours.count_params() == theirs.count_params()
    assert ours.get_layer("post_bn") is not None


def test_shortcut_options_change_parameters_not_shapes():
    a, b, c = (kr.ResNet20(shortcut=option) for option in "ABC")
    assert a.output_shape == b.output_shape == c.output_shape == (None, 10)
    # B adds a 1x1 projection + BN (gamma, beta) at the two widening transitions.
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert count_params(b) - count_params(a) == projections
    # C projects in every block: 9 blocks of widths 16 x3, 32 x3, 64 x3.
    every = sum(
        (cin * cout + 2 * cout)
        for cin, cout in [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
    )
    assert count_params(c) - count_params(a) == every
    assert len(_layers_of(a, kr.ZeroPadShortcut)) == 2
    assert not _layers_of(b, kr.ZeroPadShortcut)


def test_option_a_pads_identity_with_zeros():
    model = kr.ResNet20()
    pad = model.get_layer("conv3_block1_0_pad")
    x = np.random.rand(1, 8, 8, 16).astype("float32")
    y = keras.ops.convert_to_numpy(pad(x))
    np.testing.assert_array_equal(y[..., :16], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 16:], 0)


@pytest.mark.parametrize("plain, residual", [(kr.Plain20, kr.ResNet20), (kr.PlainNet34, None)])
def test_plain_twins_have_no_additions(plain, residual):
    model = plain()
    assert not _layers_of(model, keras.layers.Add)
    assert not _layers_of(model, kr.ZeroPadShortcut)
    if residual is not None:
        twin = residual()
        assert _layers_of(twin, keras.layers.Add)
        # Option A shortcuts have no parameters: the twins are the same size.
        assert count_params(model) == count_params(twin)


def test_stride_position_is_a_switch():
    paper = kr.ResNet50(input_shape=(64, 64, 3), include_top=False)
    v15 = kr.ResNet50(input_shape=(64, 64, 3), include_top=False, stride_in="3x3")
    assert paper.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert paper.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert paper.output_shape == v15.output_shape == (None, 2, 2, 2048)
    assert kr.count_macs(v15) > kr.count_macs(paper)


@pytest.mark.parametrize("builder", [kr.ResNet18, kr.ResNet50])
@pytest.mark.parametrize("output_stride, side", [(32, 2), (16, 4), (8, 8)])
def test_output_stride_by_dilation(builder, output_stride, side):
    model = builder(include_top=False, input_shape=(64, 64, 3), output_stride=output_stride)
    assert model.output_shape[1:3] == (side, side)
    rates = {layer.dilation_rate[0] for layer in _layers_of(model, keras.layers.Conv2D)}
    assert max(rates) == 32 // output_stride
    # Dilation changes no parameter.
    assert count_params(model) == count_params(builder(include_top=False, input_shape=(64, 64, 3)))


def test_zero_init_residual_starts_blocks_as_identity():
    model = kr.ResNet20(zero_init_residual=True)
    gamma = model.get_layer("conv2_block1_2_bn").gamma
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gamma), 0)
    default = kr.ResNet20()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(default.get_layer("conv2_block1_2_bn").gamma), 1)
    v2 = kr.ResNet18V2(zero_init_residual=True, input_shape=(64, 64, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(v2.get_layer("conv2_block1_2_conv").kernel), 0)
    # With every branch at zero a v1 block outputs relu(shortcut): the stage
    # conv2 output equals the stem output, relu'd.
    stem = keras.Model(model.input, [model.get_layer("conv1_relu").output, model.get_layer("conv2_block3_out").output])
    x = np.random.rand(2, 32, 32, 3).astype("float32")
    before, after = stem.predict(x, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_classifier_in_float32(policy):
    keras.config.set_dtype_policy(policy)
    model = kr.ResNet20()
    assert model.get_layer("conv1_conv").compute_dtype == policy.split("_")[1]
    assert model.get_layer("predictions").compute_dtype == "float32"
    out = model.predict(np.random.rand(2, 32, 32, 3).astype("float32"), verbose=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def check_channels_first_matches_channels_last():
    x = np.random.rand(2, 32, 32, 3).astype("float32")
    keras.config.set_image_data_format("channels_last")
    last = kr.ResNet20(classifier_activation=None)
    keras.config.set_image_data_format("channels_first")
    first = kr.ResNet20(classifier_activation=None)
    assert first.input_shape == (None, 3, 32, 32)
    first.set_weights(last.get_weights())
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2), verbose=0), last.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )


def test_channels_first_models_match_channels_last():
    """channels_first builders, in-model preprocessing and feature maps, checked in one JAX interpreter."""
    call_channels_first(
        "models.test_builders.check_channels_first_matches_channels_last",
        "models.test_preprocessing.check_channels_first_preprocessing_matches_channels_last",
        "models.test_features.check_channels_first_pooling",
        "models.test_features.check_channels_first_extractor_maps",
    )


@pytest.mark.parametrize("builder", [kr.ResNet20, kr.ResNet18V2])
def test_keras_archive_round_trip(builder, tmp_path):
    model = builder(input_shape=(32, 32, 3), classes=10)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode stays on
    x = np.random.rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_input_tensor_and_generic_table():
    tensor = keras.Input((48, 48, 3), name="image")
    model = kr.ResNet18(input_tensor=tensor, include_top=False, pooling="max")
    assert model.inputs[0] is tensor
    assert model.output_shape == (None, 512)
    assert model.get_layer("max_pool") is not None
    tiny = kr.ResNet(
        {"block": "bottleneck", "depths": (1, 1), "widths": (8, 16), "stem": "cifar"},
        input_shape=(16, 16, 3),
        classes=3,
        name="tiny",
    )
    assert tiny.output_shape == (None, 3)
    assert tiny.get_layer("conv3_block1_3_conv").filters == 64
    assert kr.get_model("plain20").name == "plain20"


def test_every_public_constructor_builds_and_names_itself():
    for name, constructor in kr.MODELS.items():
        if name in ("resnet1202", "resnet200", "resnet200v2", "resnet152v2", "resnet101v2"):
            continue  # large: covered by the architecture table tests
        model = constructor(input_shape=(32, 32, 3), classes=7)
        assert model.name == name
        assert model.output_shape == (None, 7)
        assert constructor.__doc__ and f"{constructor.__name__}(" in constructor.__doc__


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pooling="mean", include_top=False), "pooling must be one of None, 'avg', 'max'; received 'mean'"),
        (dict(classes=0), "classes must be a positive integer; received 0"),
        (dict(classes=2.5), "classes must be a positive integer; received 2.5"),
        (dict(shortcut="D"), "shortcut must be one of 'A', 'B', 'C'; received 'D'"),
        (dict(stride_in="5x5"), "stride_in must be one of '1x1', '3x3'; received '5x5'"),
        (dict(output_stride=5), "output_stride must be one of 32, 16, 8; received 5"),
        (dict(input_shape=(64, 64)), "input_shape must be 3 positive integers"),
        (
            dict(input_shape=32),
            "input_shape must be 3 positive integers (or None for a free spatial size), "
            "(height, width, channels); received 32",
        ),
        (dict(weights="/no/such/file.weights.h5"), "weights must be None, 'imagenet' or the path of an existing"),
        (dict(weights=3), "weights must be None, 'imagenet' or a file path; received 3"),
    ],
)
def test_bad_arguments_name_argument_value_and_choices(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kr.ResNet50(**kwargs)


def test_bad_arguments_for_imagenet_weights():
    with pytest.raises(ValueError, match=re.escape("classes must be 1000 when loading weights='imagenet'")):
        kr.ResNet50(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="no published Keras ImageNet weights"):
        kr.ResNet18(weights="imagenet")
    with pytest.raises(ValueError, match="no published Keras ImageNet weights"):
        kr.ResNet20(weights="imagenet")
    with pytest.raises(ValueError, match="no published Keras ImageNet weights"):
        kr.ResNet50(weights="imagenet", shortcut="C")


def test_imagenet_weights_with_the_wrong_channel_count_are_refused_before_any_download(monkeypatch):
    def download(*args):
        raise AssertionError(f"downloaded {args} before checking input_shape")

    monkeypatch.setattr(kr.models.weights, "imagenet_weights_path", download)
    with pytest.raises(ValueError, match=re.escape("input_shape must have 3 channels when loading weights='imagenet'")):
        kr.ResNet50(weights="imagenet", input_shape=(224, 224, 1))


def test_weights_require_rgb_inputs_of_32_pixels(tmp_path):
    path = tmp_path / "r20.weights.h5"
    kr.ResNet20().save_weights(path)
    with pytest.raises(
        ValueError, match=re.escape("at least 32 when loading weights; received input_shape=(16, 16, 3)")
    ):
        kr.ResNet20(weights=path, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match=re.escape("must have 3 channels when loading weights")):
        kr.ResNet20(weights=path, input_shape=(32, 32, 1))


# --- compiled on construction, any data users have, errors that say how to fix the input ---------------


def _readme_first_block():
    text = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]


@pytest.mark.slow
def test_readme_first_lines_run_literally_and_the_loss_falls():
    block = _readme_first_block()
    assert "model = ResNet50(weights=None); model.fit(ds)" in block
    keras.utils.set_random_seed(0)
    namespace = {}
    fitted = []
    original_fit = kr.ResNetModel.fit

    def recording_fit(self, *args, **kwargs):
        history = original_fit(self, *args, **kwargs)
        fitted.append((self.name, history.history))
        return history

    kr.ResNetModel.fit = recording_fit
    try:
        exec(compile(block, "README.md", "exec"), namespace)
    finally:
        kr.ResNetModel.fit = original_fit
    (resnet50, imagenet_history), (resnet20, cifar_history) = fitted
    assert resnet50 == "resnet50" and resnet20 == "resnet20"
    assert set(imagenet_history) == {"loss", "accuracy", "top5_accuracy"}
    assert np.isfinite(imagenet_history["loss"][0])
    assert cifar_history["loss"][-1] < cifar_history["loss"][0]


def _optimizer_summary(model):
    config = model.optimizer.get_config()
    rate = config["learning_rate"]
    schedule = rate["class_name"] if isinstance(rate, dict) else type(rate).__name__
    return type(model.optimizer).__name__, schedule, config["l2"], config["momentum"]


@pytest.mark.parametrize(
    "build, logits, schedule",
    [
        (lambda: kr.ResNet20(), False, "StepDecay"),
        (lambda: kr.ResNet20(classifier_activation=None), True, "StepDecay"),
        (lambda: kr.ResNet18(input_shape=(32, 32, 3)), False, "float"),
    ],
)
def test_models_with_a_classifier_come_compiled_with_their_family_recipe(build, logits, schedule):
    model = build()
    assert _optimizer_summary(model) == ("L2SGD", schedule, 1e-4, 0.9)
    assert model.loss.get_config()["from_logits"] is logits
    rate = model.optimizer.get_config()["learning_rate"]
    if schedule == "StepDecay":  # the CIFAR recipe, whole, inside the optimizer
        assert rate["config"]["boundaries"] == [32_000, 48_000]
    else:  # ImageNet: a constant 0.1 that `PlateauDecay` (kr.training.run_callbacks("imagenet")) lowers
        assert rate == pytest.approx(0.1)


def test_backbones_and_other_activations_stay_uncompiled():
    assert not kr.ResNet20(include_top=False).compiled
    assert not kr.ResNet20(classifier_activation="sigmoid").compiled


def test_a_later_compile_replaces_the_default():
    model = kr.ResNet20()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert type(model.optimizer).__name__ == "Adam"
    kr.compile_for(model, "cifar10", lr=0.05)
    assert type(model.optimizer).__name__ == "L2SGD"


def test_precompiled_model_round_trips_with_its_compile_config(tmp_path):
    model = kr.ResNet20(classes=5)
    x, y = kr.shapes.generate(16, seed=0)
    model.fit(x, y, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_compile_config() == model.get_compile_config()
    assert _optimizer_summary(loaded) == _optimizer_summary(model)
    assert int(loaded.optimizer.iterations) == 2
    history = loaded.fit(x, y, batch_size=8, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}


def _uint8_batches(count=128, classes=5, batch=16, image_size=32):
    """What `tfds.load(..., as_supervised=True).batch(n)` yields: uint8 images, int64 labels."""
    import tensorflow as tf

    images, labels = kr.shapes.generate(count, classes=kr.shapes.CLASS_NAMES[:classes], image_size=image_size)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


@pytest.mark.parametrize("include_preprocessing", [False, True])
def test_resnet20_fits_tfds_style_uint8_batches_and_the_loss_falls(include_preprocessing):
    keras.utils.set_random_seed(0)
    ds = _uint8_batches()
    model = kr.ResNet20(include_preprocessing=include_preprocessing)
    history = model.fit(ds, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_numpy_arrays_and_image_dataset_from_directory(tmp_path):
    x, y = kr.shapes.generate(16, image_size=48, seed=1)
    kr.shapes.save_folder(tmp_path, train_size=10, validation_size=0, image_size=48)
    ds = keras.utils.image_dataset_from_directory(tmp_path / "train", batch_size=5, seed=0)  # 256x256 floats
    model = kr.ResNet20(include_preprocessing=True, classes=5)
    assert np.isfinite(model.fit(ds, verbose=0).history["loss"][0])
    assert np.isfinite(model.fit(x, y, batch_size=8, verbose=0).history["loss"][0])
    fixed = kr.ResNet20(input_shape=(48, 48, 3), classes=5)
    assert np.isfinite(fixed.fit(x, y, batch_size=8, verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match=re.escape("resnet20 takes images of 32x32 pixels")) as error:
        kr.ResNet20(classes=5).fit(ds, verbose=0)
    assert "input_shape=(256, 256, 3)" in str(error.value)
    assert "include_preprocessing=True" in str(error.value)


@pytest.mark.parametrize(
    "images, parts",
    [
        (
            np.zeros((2, 64, 64, 3), "uint8"),
            [
                "resnet20 takes images of 32x32 pixels, batches of shape (batch, height, width, channels) = "
                "(batch, 32, 32, 3); received shape (",
                ", 64, 64, 3). Build the model with input_shape=(64, 64, 3)",
                "or with include_preprocessing=True",
            ],
        ),
        (
            np.zeros((2, 32, 32, 1), "uint8"),
            [
                "resnet20 takes images with 3 channels, batches of shape (batch, height, width, channels) = "
                "(batch, 32, 32, 3); received shape (",
                ", 32, 32, 1) (1 channels). Convert the images to RGB",
                "input_shape=(32, 32, 1)",
            ],
        ),
        (
            np.zeros((32, 32, 3), "uint8"),
            [
                "resnet20 takes batches of images of shape (batch, height, width, channels) = (batch, 32, 32, 3); "
                "received an input of shape (32, 32, 3). Batch the images"
            ],
        ),
    ],
)
def test_wrong_input_shape_says_what_was_expected_and_how_to_fix_it(images, parts):
    model = kr.ResNet20()
    if images.ndim == 4:
        calls = [lambda: model.predict(images, verbose=0), lambda: model.fit(images, np.zeros(2), verbose=0)]
    else:
        calls = [lambda: model(images)]
    for call in calls:
        with pytest.raises(ValueError) as error:
            call()
        assert all(part in str(error.value) for part in parts), str(error.value)


def test_preprocessing_models_take_any_size_but_check_channels():
    model = kr.ResNet20(include_preprocessing=True)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "takes images with 3 channels, batches of shape (batch, height, width, channels) = (batch, any, any, 3)"
        ),
    ):
        model.predict(np.zeros((1, 32, 32, 4), "uint8"), verbose=0)
    assert model.predict(np.zeros((1, 17, 45, 3), "uint8"), verbose=0).shape == (1, 10)


def test_models_registry_is_the_constructors():
    assert kr.MODELS["resnet50"] is kr.ResNet50
    assert all(constructor.__name__.lower() == name for name, constructor in kr.MODELS.items())
    assert len(kr.MODELS) == 25
