"""Tests of keras_resnet.export: `export`, the served SavedModel and its consumers, staged writing, .keras archives,
the `keras-resnet export` command. LiteRT and ONNX: test_litert.py, test_onnx.py."""

import concurrent.futures
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from export_helpers import (  # noqa: E402
    CONSUMER_ENV,
    NO_KERAS_RESNET,
    TOLERANCE,
    classifier,
    reference,
    run_consumer,
    uint8_images,
)

import keras_resnet as kr  # noqa: E402
from keras_resnet import cli, data, export  # noqa: E402

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@functools.lru_cache
def load(export_dir):
    return tf.saved_model.load(export_dir)


def served(export_dir, signature="serving_default", **inputs):
    function = load(str(export_dir)).signatures[signature]
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def assert_consistent_top_k(outputs, class_names, k):
    """top_k_* are the k best probabilities, best first, with their indices and names (ties in any order)."""
    probabilities = outputs["probabilities"]
    np.testing.assert_array_equal(outputs["top_k_scores"], -np.sort(-probabilities, axis=1)[:, :k])
    np.testing.assert_array_equal(
        np.take_along_axis(probabilities, outputs["top_k_indices"].astype(np.int64), axis=1), outputs["top_k_scores"]
    )
    names = np.array(class_names, dtype=object)[outputs["top_k_indices"]]
    np.testing.assert_array_equal(outputs["top_k_classes"].astype(str), names.astype(str))


@pytest.fixture(scope="module")
def model():
    return classifier()


@pytest.fixture(scope="module")
def logits_model(model):
    """The same network without softmax: its raw outputs show a preprocessing difference at any input scale."""
    logits_model = kr.ResNet20(input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    return logits_model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """ResNet-20 exported with "tf" preprocessing, CIFAR-10 class names and top 3."""
    export_dir = tmp_path_factory.mktemp("export") / "resnet20"
    metadata = export.export_saved_model(model, export_dir, preprocessing="tf", class_names=CLASS_NAMES, top_k=3)
    return export_dir, metadata


def test_serving_default_matches_the_model_and_carries_its_metadata(model, exported):
    export_dir, metadata = exported
    images = uint8_images((4, 32, 32, 3))
    outputs = served(export_dir, images=images)
    assert sorted(outputs) == ["probabilities", "top_k_classes", "top_k_indices", "top_k_scores"]
    assert outputs["top_k_indices"].shape == (4, 3) and outputs["top_k_indices"].dtype == np.int32
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)
    assert_consistent_top_k(outputs, CLASS_NAMES, 3)

    described = served(export_dir, "metadata")
    assert described["image_size"].tolist() == [32, 32]
    assert described["class_names"].astype(str).tolist() == CLASS_NAMES
    assert described["top_k"] == 3 and not described["crop_to_aspect_ratio"]
    assert json.loads(described["preprocessing"]) == "tf"
    assert (export_dir / "assets" / "class_names.txt").read_text().splitlines() == CLASS_NAMES
    assert json.loads((export_dir / "assets" / "metadata.json").read_text()) == metadata
    assert metadata["model_name"] == "resnet20" and metadata["keras_backend"] == keras.backend.backend()


CONSUMER = NO_KERAS_RESNET + textwrap.dedent(
    """
    import json
    import keras
    import numpy as np
    import tensorflow as tf

    export_dir, work = sys.argv[1:]
    images = np.load(f"{work}/images.npy")
    encoded = [open(f"{work}/{index}.png", "rb").read() for index in range(len(images))]
    serving = tf.saved_model.load(export_dir)
    outputs = {f"loaded_{k}": v.numpy() for k, v in serving.signatures["serving_default"](images=images).items()}
    outputs.update(
        {f"bytes_{k}": v.numpy() for k, v in serving.signatures["serving_bytes"](image_bytes=encoded).items()}
    )
    layer = keras.layers.TFSMLayer(export_dir, call_endpoint="serving_default")
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    wrapped = keras.Model(inputs, layer(inputs)["probabilities"])
    outputs["tfsm_probabilities"] = wrapped.predict(images, verbose=0)
    outputs["class_names"] = serving.signatures["metadata"]()["class_names"].numpy().astype(str)
    with open(f"{export_dir}/assets/metadata.json") as file:
        outputs["image_size"] = np.array(json.load(file)["image_size"])
    np.savez(f"{work}/outputs.npz", **outputs)
    print("modules:", sorted(name for name, module in sys.modules.items()
                             if name.split(".")[0] == "keras_resnet" and module))
    """
)


def test_a_consumer_without_keras_resnet_loads_calls_and_wraps_the_export(model, exported, tmp_path):
    export_dir, _ = exported
    images = uint8_images((3, 32, 32, 3), seed=1)
    np.save(tmp_path / "images.npy", images)
    for index, image in enumerate(images):
        (tmp_path / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    assert "modules: []" in run_consumer(CONSUMER, export_dir, tmp_path, cwd=tmp_path)
    outputs = np.load(tmp_path / "outputs.npz", allow_pickle=True)
    expected = reference(model, images)
    for key in ("loaded_probabilities", "bytes_probabilities", "tfsm_probabilities"):
        np.testing.assert_allclose(outputs[key], expected, atol=TOLERANCE, err_msg=key)
    assert_consistent_top_k({k[len("bytes_") :]: outputs[k] for k in outputs if k.startswith("bytes_")}, CLASS_NAMES, 3)
    assert outputs["class_names"].tolist() == CLASS_NAMES
    assert outputs["image_size"].tolist() == [32, 32]


def test_saved_model_cli_runs_the_serving_signature(model, exported, tmp_path):
    export_dir, _ = exported
    images = uint8_images((2, 32, 32, 3), seed=2)
    np.save(tmp_path / "images.npy", images)
    run = subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(export_dir),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=CONSUMER_ENV,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outputs = {
        name: np.load(tmp_path / "out" / f"{name}.npy", allow_pickle=True)
        for name in ("probabilities", "top_k_indices", "top_k_scores", "top_k_classes")
    }
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)
    assert_consistent_top_k(outputs, CLASS_NAMES, 3)


STATISTICS_IMAGES = uint8_images((6, 32, 32, 3), seed=3)


def cifar_reference(normalization):
    """Served preprocessing and the batch data.cifar_pipeline (an independent implementation) feeds the model."""
    source = data.array_source(STATISTICS_IMAGES, np.zeros(6, np.int32))
    statistics = data.image_statistics(source)
    pipeline = data.cifar_pipeline(
        source, training=False, batch_size=6, normalization=normalization, statistics=statistics
    )
    return export.cifar_preprocessing(statistics, normalization), next(iter(pipeline))[0].numpy()


def caffe_reference():
    return "caffe", kr.preprocess_input(STATISTICS_IMAGES.astype("float32"), mode="caffe")


def bgr_reference():
    mean, std = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)
    normalize = data.normalizer(mean, std, channel_order="bgr")
    preprocessing = {"mean": mean, "std": std, "channel_order": "bgr"}
    return preprocessing, np.asarray(normalize(STATISTICS_IMAGES.astype("float32")))


def identity_reference():
    return None, STATISTICS_IMAGES.astype("float32")


@pytest.mark.parametrize(
    "make_reference",
    [
        caffe_reference,
        bgr_reference,
        identity_reference,
        lambda: cifar_reference("pixel"),
        lambda: cifar_reference("channel"),
    ],
    ids=["caffe", "dict-bgr", "none", "cifar-pixel", "cifar-channel"],
)
def test_served_preprocessing_matches_the_reference_implementations(logits_model, tmp_path, make_reference):
    preprocessing, model_inputs = make_reference()
    metadata = export.export_saved_model(
        logits_model, tmp_path / "export", preprocessing=preprocessing, from_logits=False
    )
    outputs = served(tmp_path / "export", images=STATISTICS_IMAGES)
    # The served "probabilities" are the logits as they are (from_logits=False): relative float32 precision.
    expected = logits_model.predict(model_inputs, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=TOLERANCE, atol=TOLERANCE)
    assert json.loads(json.dumps(metadata["preprocessing"])) == json.loads(json.dumps(preprocessing))


@pytest.mark.parametrize("crop_to_aspect_ratio", [False, True])
def test_other_sizes_are_resized_like_keras_resizing(model, exported, tmp_path, crop_to_aspect_ratio):
    export_dir = exported[0]
    if crop_to_aspect_ratio:
        export_dir = tmp_path / "cropping"
        export.export_saved_model(model, export_dir, preprocessing="tf", crop_to_aspect_ratio=True)
    resizing = keras.layers.Resizing(32, 32, crop_to_aspect_ratio=crop_to_aspect_ratio, antialias=True)
    wide, tall = uint8_images((2, 40, 56, 3), seed=4), uint8_images((1, 48, 30, 3), seed=5)
    expected = [reference(model, np.asarray(resizing(batch.astype("float32")))) for batch in (wide, tall)]

    np.testing.assert_allclose(served(export_dir, images=wide)["probabilities"], expected[0], atol=TOLERANCE)
    encoded = [tf.io.encode_png(image).numpy() for image in (*wide, *tall)]
    from_bytes = served(export_dir, "serving_bytes", image_bytes=encoded)["probabilities"]
    np.testing.assert_allclose(from_bytes, np.concatenate(expected), atol=TOLERANCE)


def test_serving_bytes_decodes_jpeg_like_tensorflow(model, exported):
    images = uint8_images((2, 32, 32, 3), seed=6)
    jpegs = [tf.io.encode_jpeg(image, quality=90).numpy() for image in images]
    decoded = np.stack([tf.io.decode_jpeg(jpeg).numpy() for jpeg in jpegs])
    outputs = served(exported[0], "serving_bytes", image_bytes=jpegs)
    np.testing.assert_allclose(outputs["probabilities"], reference(model, decoded), atol=TOLERANCE)
    assert outputs["top_k_classes"].shape == (2, 3)


IMAGES_EXPECTED = re.escape(
    "images must be a uint8 batch of RGB images, shape (batch, height, width, 3), none of them 0; received shape"
)
BYTES_EXPECTED = re.escape(
    "image_bytes must be a non-empty 1-D batch of encoded images (JPEG, PNG, GIF, BMP or WebP); received shape"
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("serving_default", {"images": np.zeros((32, 32, 3), np.uint8)}, IMAGES_EXPECTED + r"\] \[32 32 3\]"),
        ("serving_default", {"images": np.zeros((), np.uint8)}, IMAGES_EXPECTED + r"\] \[\]"),
        ("serving_default", {"images": np.zeros((2, 32, 32, 4), np.uint8)}, IMAGES_EXPECTED + r"\] \[2 32 32 4\]"),
        ("serving_default", {"images": np.zeros((1, 8, 8, 1), np.uint8)}, IMAGES_EXPECTED + r"\] \[1 8 8 1\]"),
        ("serving_default", {"images": np.zeros((0, 32, 32, 3), np.uint8)}, IMAGES_EXPECTED + r"\] \[0 32 32 3\]"),
        ("serving_default", {"images": np.zeros((1, 0, 5, 3), np.uint8)}, IMAGES_EXPECTED + r"\] \[1 0 5 3\]"),
        ("serving_bytes", {"image_bytes": np.array(b"x", object)}, BYTES_EXPECTED + r"\] \[\]"),
        ("serving_bytes", {"image_bytes": np.array([[b"x"]], object)}, BYTES_EXPECTED + r"\] \[1 1\]"),
        ("serving_bytes", {"image_bytes": np.array([], object)}, BYTES_EXPECTED + r"\] \[0\]"),
        (
            "serving_bytes",
            {"image_bytes": np.array([PNG, b"not an image", b"", PNG], object)},
            re.escape(
                "must hold encoded JPEG, PNG, GIF, BMP or WebP images; received undecodable bytes at batch "
                "positions] [1 2]"
            ),
        ),
    ],
    ids=[
        "rank-3",
        "scalar",
        "4-channels",
        "grey",
        "empty-batch",
        "no-rows",
        "bytes-scalar",
        "bytes-rank-2",
        "bytes-empty",
        "undecodable",
    ],
)
def test_bad_input_fails_with_what_was_expected_and_received(exported, signature, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served(exported[0], signature, **inputs)


def tiny_model(**kwargs):
    return kr.ResNet({"block": "basic", "depths": (1,), "widths": (4,), "stem": "cifar"}, classes=3, **kwargs)


@pytest.mark.parametrize(
    "model_kwargs, options, message",
    [
        (
            {},
            {"preprocessing": "torch"},
            "preprocessing must be one of 'caffe', 'tf', None or a dict {'mean': ..., 'std': ...}; received 'torch'",
        ),
        (
            {},
            {"preprocessing": {"std": 2.0}},
            "preprocessing as a dict must have the key 'mean' and may have 'std', 'channel_order', 'resize_size', "
            "'crop_size' and 'interpolation'; received keys ['std']",
        ),
        (
            {},
            {"preprocessing": {"mean": [1.0, 2.0]}},
            "preprocessing['mean'] must have shape (3,) or (8, 8, 3) (per pixel at the image size); "
            "received shape (2,)",
        ),
        (
            {},
            {"preprocessing": {"mean": [0.0] * 3, "std": [1.0, 2.0]}},
            "preprocessing['std'] must broadcast to the mean's shape (3,); received shape (2,)",
        ),
        ({}, {"preprocessing": {"mean": [0.0] * 3, "std": 0.0}}, "preprocessing['std'] must be positive; received 0.0"),
        (
            {},
            {"preprocessing": {"mean": [0.0] * 3, "channel_order": "gbr"}},
            "preprocessing['channel_order'] must be one of 'rgb', 'bgr'; received 'gbr'",
        ),
        ({}, {"top_k": 0}, "top_k must be an integer from 1 to 3 (the number of classes); received 0"),
        ({}, {"top_k": 4}, "top_k must be an integer from 1 to 3 (the number of classes); received 4"),
        (
            {},
            {"class_names": ["a", "b"]},
            "class_names must be 3 strings (one per model output, no line breaks); received 2 items: ['a', 'b']",
        ),
        ({}, {"class_names": ["a", "b\nc", "d"]}, "class_names must be 3 strings"),
        (
            {},
            {"image_size": 16},
            "image_size must be two positive integers (height, width) agreeing with the "
            "model's input size (8, 8); received 16",
        ),
        (
            {"input_shape": (None, None, 3)},
            {},
            "image_size must be given as (height, width) for a model with a free input size (None, None); "
            "received None",
        ),
        (
            {"input_shape": (8, 8, 1)},
            {},
            "model must take one batch of RGB images, channels last, input shape "
            "(batch, height, width, 3); received input shape (None, 8, 8, 1)",
        ),
        (
            {"include_top": False},
            {},
            "model must output one score per class, shape (batch, classes); received (None, 8, 8, 4)",
        ),
        ({}, {"crop_to_aspect_ratio": "yes"}, "crop_to_aspect_ratio must be one of True, False; received 'yes'"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_allowed(tmp_path, model_kwargs, options, message):
    model = tiny_model(**{"input_shape": (8, 8, 3), **model_kwargs})
    with pytest.raises(ValueError, match=re.escape(message)):
        export.export_saved_model(model, tmp_path / "export", **options)
    assert not (tmp_path / "export").exists()


def test_cifar_preprocessing_refuses_unknown_normalization():
    with pytest.raises(
        ValueError, match=re.escape("normalization must be one of 'pixel', 'channel', None; received 'mean'")
    ):
        export.cifar_preprocessing({}, "mean")


def test_free_size_logits_model_serves_probabilities_at_the_given_size(model, tmp_path):
    free_size = kr.ResNet20(input_shape=(None, None, 3), classes=10, classifier_activation=None)
    free_size.set_weights(model.get_weights())
    metadata = export.export_saved_model(
        free_size, tmp_path / "export", preprocessing="tf", image_size=(32, 32), from_logits=True
    )
    assert metadata["image_size"] == [32, 32] and metadata["from_logits"] and metadata["top_k"] == 5
    images = uint8_images((3, 32, 32, 3), seed=7)
    outputs = served(tmp_path / "export", images=images)
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)
    assert_consistent_top_k(outputs, [str(index) for index in range(10)], 5)


def test_default_options_serve_the_recorded_preprocessing_and_class_names_as_probabilities(model, tmp_path):
    recorded = kr.ResNet20(input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    recorded.set_weights(model.get_weights())
    recorded.record(preprocessing="tf", class_names=CLASS_NAMES)
    metadata = kr.export.export(recorded, tmp_path / "export")
    assert (metadata["preprocessing"], metadata["from_logits"]) == ("tf", True)
    images = uint8_images((3, 32, 32, 3), seed=3)
    outputs = served(tmp_path / "export", images=images)
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)
    assert_consistent_top_k(outputs, CLASS_NAMES, 5)


def test_a_model_that_includes_its_preprocessing_is_not_normalised_twice(model, tmp_path):
    own = kr.ResNet20(input_shape=(32, 32, 3), classes=10, include_preprocessing=True)
    own.set_weights(model.get_weights())
    for format, path in [("saved_model", "export"), ("litert", "m.tflite"), ("onnx", "m.onnx")]:
        with pytest.raises(ValueError, match=re.escape("normalises its input itself (built with include_prepro")):
            kr.export.export(own, tmp_path / path, format=format, preprocessing="tf", image_size=32)
    assert os.listdir(tmp_path) == []
    # Its input size is free; without image_size it serves images of the size it resizes to.
    assert own.input_shape == (None, None, None, 3)
    assert kr.export.export(own, tmp_path / "export")["image_size"] == [32, 32]
    images = uint8_images((3, 32, 32, 3), seed=4)
    expected = own.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(served(tmp_path / "export", images=images)["probabilities"], expected, atol=TOLERANCE)


@pytest.mark.parametrize("format", ["saved_model", "litert", "onnx"])
def test_an_output_activation_neither_softmax_nor_linear_needs_from_logits(tmp_path, format):
    sigmoid = tiny_model(input_shape=(8, 8, 3), classifier_activation="sigmoid")
    with pytest.raises(ValueError, match=re.escape("output activation is neither softmax nor linear ('sigmoid')")):
        kr.export.export(sigmoid, tmp_path / "out", format=format)
    assert os.listdir(tmp_path) == []


def test_keras_archive_round_trips_in_safe_mode(model, tmp_path):
    model.save(tmp_path / "resnet20.keras")
    reloaded = keras.saving.load_model(tmp_path / "resnet20.keras", safe_mode=True)
    assert any(isinstance(layer, kr.ZeroPadShortcut) for layer in reloaded.layers)
    images = uint8_images((2, 32, 32, 3), seed=8).astype("float32")
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), model.predict(images, verbose=0))


JAX_EXPORTER = textwrap.dedent(
    """
    import sys
    import keras
    import keras_resnet as kr
    from keras_resnet import export

    weights, export_dir = sys.argv[1:]
    assert keras.backend.backend() == "jax", keras.backend.backend()
    model = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
    model.load_weights(weights)
    try:
        export.export_saved_model(model, export_dir, preprocessing="tf", class_names=%r)
    except NotImplementedError as error:
        print("UNSUPPORTED:", error)
    """
) % (CLASS_NAMES,)


@pytest.mark.slow
def test_export_from_the_jax_backend_serves_the_same_outputs(model, tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: the JAX backend export (through jax2tf) cannot be tested")
    model.save_weights(tmp_path / "resnet20.weights.h5")
    run = subprocess.run(
        [sys.executable, "-c", JAX_EXPORTER, str(tmp_path / "resnet20.weights.h5"), str(tmp_path / "export")],
        capture_output=True,
        text=True,
        env={**CONSUMER_ENV, "KERAS_BACKEND": "jax"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    if "UNSUPPORTED:" in run.stdout:
        pytest.skip(f"Keras cannot export from the JAX backend here: {run.stdout.strip()}")
    metadata = json.loads((tmp_path / "export" / "assets" / "metadata.json").read_text())
    assert metadata["keras_backend"] == "jax"
    images = uint8_images((3, 32, 32, 3), seed=9)
    outputs = served(tmp_path / "export", images=images)
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)
    assert_consistent_top_k(outputs, CLASS_NAMES, 5)


def test_a_thousand_concurrent_requests_answer_as_sequential_calls(exported):
    serve = load(str(exported[0])).signatures["serving_default"]
    requests = [tf.constant(image[None]) for image in uint8_images((1000, 32, 32, 3), seed=10)]

    def answer(images):
        return {name: value.numpy() for name, value in serve(images=images).items()}

    sequential = [answer(images) for images in requests]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        concurrent_answers = list(pool.map(answer, requests))
    for one, other in zip(sequential, concurrent_answers):
        for name in one:
            np.testing.assert_array_equal(one[name], other[name], err_msg=name)


def parse_export_command(argv):
    return cli.build_parser().parse_args(["export", *argv])


def test_export_command_exports_a_keras_archive(model, tmp_path, capsys):
    model.save(tmp_path / "resnet20.keras")
    statistics = data.image_statistics(data.array_source(STATISTICS_IMAGES, np.zeros(6, np.int32)))
    preprocessing = export.cifar_preprocessing(statistics, "channel")
    (tmp_path / "preprocessing.json").write_text(json.dumps(preprocessing))
    (tmp_path / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    args = parse_export_command(
        [
            "--checkpoint",
            str(tmp_path / "resnet20.keras"),
            "--output",
            str(tmp_path / "export"),
            "--preprocessing",
            str(tmp_path / "preprocessing.json"),
            "--class-names",
            str(tmp_path / "classes.txt"),
            "--top-k",
            "2",
            "--crop-to-aspect-ratio",
        ]
    )
    args.run(args)
    assert f"wrote {tmp_path / 'export'}: signatures serving_default" in capsys.readouterr().out
    metadata = json.loads((tmp_path / "export" / "assets" / "metadata.json").read_text())
    assert (
        metadata["preprocessing"],
        metadata["class_names"],
        metadata["top_k"],
        metadata["crop_to_aspect_ratio"],
    ) == (preprocessing, CLASS_NAMES, 2, True)
    mean, std = np.array(preprocessing["mean"]), np.array(preprocessing["std"])
    outputs = served(tmp_path / "export", images=STATISTICS_IMAGES)
    np.testing.assert_allclose(
        outputs["probabilities"], model.predict((STATISTICS_IMAGES - mean) / std, verbose=0), atol=TOLERANCE
    )


def test_export_command_builds_a_named_model_with_weights(model, tmp_path):
    model.save_weights(tmp_path / "resnet20.weights.h5")
    args = parse_export_command(
        [
            "--model",
            "resnet20",
            "--weights",
            str(tmp_path / "resnet20.weights.h5"),
            "--output",
            str(tmp_path / "export"),
            "--preprocessing",
            "tf",
            "--image-size",
            "32",
        ]
    )
    args.run(args)
    images = uint8_images((2, 32, 32, 3), seed=11)
    np.testing.assert_allclose(
        served(tmp_path / "export", images=images)["probabilities"], reference(model, images), atol=TOLERANCE
    )


def test_importing_the_module_needs_no_tensorflow():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: Keras needs a backend other than TensorFlow to import without it")
    script = "import sys\nsys.modules['tensorflow'] = None\nimport keras_resnet.export\nprint('imported')"
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=120,
    )
    assert run.returncode == 0 and "imported" in run.stdout, run.stderr[-3000:]


def test_export_command_refuses_weights_for_a_checkpoint(tmp_path):
    args = parse_export_command(
        ["--checkpoint", str(tmp_path / "best.keras"), "--weights", "imagenet", "--output", str(tmp_path / "export")]
    )
    with pytest.raises(
        ValueError, match=re.escape("--weights goes with --model; received --weights imagenet with --checkpoint")
    ):
        args.run(args)


def test_the_keras_resnet_command_reports_export_errors_in_one_line(tmp_path, capsys):
    status = cli.main(["export", "--model", "resnet20", "--output", str(tmp_path / "export"), "--top-k", "11"])
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        "keras-resnet export: error: top_k must be an integer from 1 to 10 (the number of classes); received 11"
    )


def lambda_archive(path):
    """A `.keras` archive whose Lambda layer would run arbitrary Python bytecode when loaded unsafely."""
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(path)
    return path


def test_export_command_refuses_an_archive_with_a_lambda_layer(tmp_path):
    args = parse_export_command(
        ["--checkpoint", str(lambda_archive(tmp_path / "lambda.keras")), "--output", str(tmp_path / "export")]
    )
    with pytest.raises(ValueError, match="safe_mode"):
        args.run(args)
    assert not (tmp_path / "export").exists()


def test_version_writes_the_tensorflow_serving_layout_beside_other_versions(model, tmp_path):
    base = tmp_path / "serving" / "resnet20"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"an older version")
    metadata = kr.export.export(model, base, version=2, preprocessing="tf", class_names=CLASS_NAMES)
    assert metadata["class_names"] == CLASS_NAMES
    assert sorted(os.listdir(base)) == ["1", "2"]  # no staging folder left behind
    assert (base / "1" / "saved_model.pb").read_bytes() == b"an older version"
    images = uint8_images((2, 32, 32, 3), seed=12)
    np.testing.assert_allclose(
        served(base / "2", images=images)["probabilities"], reference(model, images), atol=TOLERANCE
    )


def test_serving_litert_signature_converts_with_builtin_ops_only(model, exported):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(exported[0]), signature_keys=["serving_litert"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = interpreter_module.Interpreter(model_content=converter.convert())
    images = uint8_images((3, 32, 32, 3), seed=13)
    outputs = interpreter.get_signature_runner("serving_litert")(images=images)
    np.testing.assert_allclose(outputs["probabilities"], reference(model, images), atol=TOLERANCE)


def non_image_model():
    inputs = keras.Input((10,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


def two_input_model():
    images, extra = keras.Input((8, 8, 3)), keras.Input((2,))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    return keras.Model([images, extra], keras.layers.Dense(3)(keras.layers.Concatenate()([pooled, extra])))


NOT_IMAGES = "model must take one batch of RGB images, channels last, input shape (batch, height, width, 3); "


@pytest.mark.parametrize("format", ["saved_model", "litert", "onnx"])
@pytest.mark.parametrize(
    "make_model, message",
    [
        (non_image_model, NOT_IMAGES + "received input shape (None, 10)"),
        (two_input_model, NOT_IMAGES + "received input shape [(None, 8, 8, 3), (None, 2)]"),
        (lambda: "resnet20", "model must be a keras.Model; received 'resnet20'"),
    ],
    ids=["vector-input", "two-inputs", "not-a-model"],
)
def test_every_format_refuses_a_model_that_is_no_image_classifier(tmp_path, format, make_model, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        kr.export.export(make_model(), tmp_path / "out", format=format)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "format, options, message",
    [
        ("tflite", {}, "format must be one of 'saved_model', 'litert', 'onnx'; received 'tflite'"),
        (
            "onnx",
            {"top_k": 3},
            "top_k is not an option of format='onnx', which takes preprocessing, image_size, "
            "from_logits, opset; received top_k=3",
        ),
        ("litert", {"version": 1}, "version is not an option of format='litert'"),
        ("saved_model", {"quantization": "int8"}, "quantization is not an option of format='saved_model'"),
        ("saved_model", {"version": 0}, "version must be a positive integer; received 0"),
    ],
)
def test_export_refuses_unknown_formats_and_options_of_another_format(tmp_path, format, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kr.export.export(tiny_model(input_shape=(8, 8, 3)), tmp_path / "out", format=format, **options)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, magic", [("out.onnx", None), ("out.tflite", b"TFL3"), ("out", None)])
def test_without_format_the_path_names_it(tmp_path, name, magic):
    path = tmp_path / name
    kr.export.export(tiny_model(input_shape=(8, 8, 3)), path)
    if name.endswith(".onnx"):
        import onnx

        onnx.checker.check_model(onnx.load(path))
    elif magic:
        assert path.read_bytes()[4:8] == magic
    else:
        assert (path / "saved_model.pb").is_file()


@pytest.mark.parametrize(
    "name, format, message",
    [
        ("x.onnx", "saved_model", "format must agree with the path's extension (.onnx is format='onnx'"),
        (
            "x.tflite",
            "onnx",
            "(.tflite is format='litert'; .tflite litert, .onnx onnx, a folder saved_model); "
            "received format='onnx' for path",
        ),
        ("x.ONNX", "litert", "received format='litert'"),
    ],
)
def test_a_format_that_the_extension_contradicts_is_refused(tmp_path, name, format, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kr.export.export(tiny_model(input_shape=(8, 8, 3)), tmp_path / name, format=format)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("format", ["litert", "onnx"])
def test_litert_and_onnx_say_that_they_need_the_tensorflow_backend(tmp_path, monkeypatch, format):
    model = tiny_model(input_shape=(8, 8, 3))
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match=re.escape(f"format={format!r} needs the TensorFlow backend (KERAS_BACKEND=")):
        kr.export.export(model, tmp_path / "out", format=format)
    assert os.listdir(tmp_path) == []


def test_onnx_without_its_converter_names_the_export_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # importing it raises ImportError
    with pytest.raises(
        ImportError, match=re.escape("needs tf2onnx (Keras' ONNX converter on TensorFlow), which is not")
    ):
        kr.export.export(tiny_model(input_shape=(8, 8, 3)), tmp_path / "out.onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("format", ["saved_model", "litert", "onnx"])
def test_an_existing_non_empty_path_is_refused_and_left_as_it_was(tmp_path, format):
    taken = tmp_path / "taken"
    if format == "saved_model":
        taken.mkdir()
        (taken / "notes.txt").write_text("keep me")
    else:
        taken.write_text("keep me")
    with pytest.raises(ValueError, match=r"(export_dir|path) must be .*nothing is overwritten.*received '.*taken'"):
        kr.export.export(tiny_model(input_shape=(8, 8, 3)), taken, format=format)
    assert (taken / "notes.txt" if format == "saved_model" else taken).read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_an_empty_folder_is_filled(model, tmp_path):
    (tmp_path / "empty").mkdir()
    kr.export.export(tiny_model(input_shape=(8, 8, 3)), tmp_path / "empty")
    assert (tmp_path / "empty" / "saved_model.pb").is_file()


@pytest.mark.parametrize("format", ["saved_model", "litert", "onnx"])
def test_a_failure_while_writing_leaves_nothing_at_the_path(tmp_path, monkeypatch, format):
    def write_half_and_fail(target):
        if format == "saved_model":
            target = os.path.join(target, "variables.data")
        with open(target, "wb") as file:
            file.write(b"half of it")
        raise RuntimeError("disk full")

    if format == "saved_model":
        monkeypatch.setattr(tf.saved_model, "save", lambda module, target, **kwargs: write_half_and_fail(target))
    else:
        monkeypatch.setattr(keras.Model, "export", lambda self, target, **kwargs: write_half_and_fail(target))
    with pytest.raises(RuntimeError, match="disk full"):
        kr.export.export(tiny_model(input_shape=(8, 8, 3)), tmp_path / "out", format=format)
    assert os.listdir(tmp_path) == []


def test_export_command_writes_litert_int8_from_a_folder_of_training_images(model, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    model.save(tmp_path / "resnet20.keras")
    for label in ("cat", "dog"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for index, image in enumerate(uint8_images((4, 32, 32, 3), seed=len(label))):
            (tmp_path / "train" / label / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    status = cli.main(
        [
            "export",
            "--checkpoint",
            str(tmp_path / "resnet20.keras"),
            "--format",
            "litert",
            "--output",
            str(tmp_path / "resnet20.tflite"),
            "--preprocessing",
            "tf",
            "--quantization",
            "int8",
            "--representative-data",
            str(tmp_path / "train"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert f"wrote {tmp_path / 'resnet20.tflite'} (litert, int8)" in capsys.readouterr().out
    interpreter = Interpreter(str(tmp_path / "resnet20.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8


def test_export_command_writes_onnx_and_a_serving_version(model, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    model.save(tmp_path / "resnet20.keras")
    common = ["export", "--checkpoint", str(tmp_path / "resnet20.keras"), "--preprocessing", "tf"]
    assert cli.main([*common, "--format", "onnx", "--output", str(tmp_path / "resnet20.onnx")]) == 0
    assert cli.main([*common, "--output", str(tmp_path / "serving"), "--version", "7"]) == 0
    images = uint8_images((2, 32, 32, 3), seed=14)
    session = onnxruntime.InferenceSession(str(tmp_path / "resnet20.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"images": images})[0], reference(model, images), atol=TOLERANCE)
    np.testing.assert_allclose(
        served(tmp_path / "serving" / "7", images=images)["probabilities"], reference(model, images), atol=TOLERANCE
    )


def test_the_keras_resnet_command_refuses_an_option_of_another_format(tmp_path, capsys):
    status = cli.main(
        [
            "export",
            "--model",
            "resnet20",
            "--format",
            "onnx",
            "--top-k",
            "3",
            "--output",
            str(tmp_path / "resnet20.onnx"),
        ]
    )
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        "keras-resnet export: error: top_k is not an option of format='onnx', which takes preprocessing, "
        "image_size, from_logits, opset; received top_k=3"
    )
    assert os.listdir(tmp_path) == []
