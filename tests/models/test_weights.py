import os
import re

import h5py
import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.models import weights as weights_lib

SIZE = (64, 64, 3)


def _randomize(model, seed=0):
    """Non-trivial BN statistics and conv biases, so that conversion matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),
                    rng.normal(0, 0.2, shape),
                    rng.normal(0, 0.2, shape),
                    rng.uniform(0.5, 2.0, shape),
                ]
            )
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.2, bias.shape)])
    return model


def _legacy_h5(model, path):
    """A file in the format of the published keras.applications weights."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def _assert_same_logits(reference, model, atol_rel=1e-4):
    x = np.random.default_rng(1).uniform(0, 255, (2, *SIZE)).astype("float32")
    expected = reference.predict(x, verbose=0)
    actual = model.predict(x, verbose=0)
    assert np.abs(actual - expected).max() / np.abs(expected).max() < atol_rel


# One depth of each naming (v1, v2) and one deeper stage 4: ResNet152 adds only more blocks of the same names.
@pytest.mark.parametrize("name", ["ResNet50", "ResNet50V2", "ResNet101V2"])
def test_keras_applications_weights_file_gives_the_same_logits(name, tmp_path):
    reference = _randomize(
        getattr(keras.applications, name)(weights=None, input_shape=SIZE, classifier_activation=None)
    )
    path = tmp_path / f"{name}.weights.h5"
    reference.save_weights(path)
    model = getattr(kr, name)(weights=path, input_shape=SIZE, classifier_activation=None)
    _assert_same_logits(reference, model)


def test_v1_conversion_folds_biases_into_batch_norm(tmp_path):
    reference = _randomize(keras.applications.ResNet50(weights=None, input_shape=SIZE))
    model = kr.ResNet50(input_shape=SIZE)
    kr.transfer_weights(reference, model)
    conv = reference.get_layer("conv2_block1_1_conv")
    bn, ours = reference.get_layer("conv2_block1_1_bn"), model.get_layer("conv2_block1_1_bn")
    assert not model.get_layer("conv2_block1_1_conv").use_bias
    _, bias = conv.get_weights()
    _, _, mean, variance = bn.get_weights()
    _, _, our_mean, our_variance = ours.get_weights()
    np.testing.assert_allclose(our_mean, mean - bias, rtol=1e-6)
    np.testing.assert_allclose(our_variance + ours.epsilon, variance + bn.epsilon, rtol=1e-6)


def test_published_imagenet_format_loads_through_weights_imagenet(tmp_path, monkeypatch):
    """The `.h5` layout of the published files, served from the cache instead of the network."""
    for include_top in (True, False):
        kwargs = dict(weights=None, include_top=include_top)
        if not include_top:
            kwargs["input_shape"] = (None, None, 3)
        reference = _randomize(keras.applications.ResNet50(**kwargs))
        path = _legacy_h5(reference, tmp_path / f"top{include_top}.h5")
        seen = []
        monkeypatch.setattr(
            weights_lib,
            "imagenet_weights_path",
            lambda name, top, seen=seen, path=path: seen.append((name, top)) or str(path),
        )
        model = kr.ResNet50(weights="imagenet", include_top=include_top, input_shape=None if include_top else SIZE)
        assert seen == [("resnet50", include_top)]
        if include_top:
            x = np.random.default_rng(2).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
            np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5)
        else:
            probe = keras.Model(reference.input, reference.output)
            x = np.random.default_rng(2).uniform(0, 255, (1, *SIZE)).astype("float32")
            expected = probe.predict(x, verbose=0)
            assert np.abs(model.predict(x, verbose=0) - expected).max() / np.abs(expected).max() < 1e-4


def test_own_weights_round_trip(tmp_path):
    model = _randomize(kr.ResNet18V2(input_shape=SIZE, classes=5))
    path = tmp_path / "own.weights.h5"
    model.save_weights(path)
    loaded = kr.ResNet18V2(input_shape=SIZE, classes=5, weights=str(path))
    _assert_same_logits(model, loaded, atol_rel=1e-7)


def test_weights_of_another_architecture_are_refused_and_nothing_loads(tmp_path):
    path = tmp_path / "r20.weights.h5"
    kr.ResNet20().save_weights(path)
    target = kr.ResNet32()
    before = [np.array(w) for w in target.get_weights()]
    with pytest.raises(ValueError, match=r"does not match model 'resnet32'; nothing was loaded") as info:
        kr.load_weights(target, path)
    # Keras' own reading of the mismatch: the first layer that differs and its shapes.
    assert re.search(r"conv2_block4_1_conv.*\(3, 3, 16, 16\).*\(3, 3, 16, 32\)", str(info.value))
    for old, new in zip(before, target.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="nor keras.applications ResNet101"):
        kr.ResNet101(weights=path)


def test_not_a_weights_file_and_truncated_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=re.escape("weights must be a Keras weights file (HDF5)")):
        kr.ResNet20(weights=text)
    good = tmp_path / "r20.weights.h5"
    kr.ResNet20().save_weights(good)
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(ValueError, match="weights"):
        kr.ResNet20(weights=truncated)


def test_imagenet_offline_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "models", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with pytest.raises(OSError, match=re.escape(f"put it at {expected}")):
        weights_lib.imagenet_weights_path("resnet50", include_top=False)


def test_imagenet_cached_file_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / "resnet101v2_weights_tf_dim_ordering_tf_kernels.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"half a download")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        kr.ResNet101V2(weights="imagenet")


def test_has_imagenet_weights_table():
    assert all(weights_lib.has_imagenet_weights(n) for n in ("resnet50", "resnet101", "resnet152"))
    assert weights_lib.has_imagenet_weights("resnet152", preact=True)
    assert not any(weights_lib.has_imagenet_weights(n) for n in ("resnet18", "resnet34", "resnet20", "resnet200"))


def _dataset_offset(path, layer="conv2d"):
    """Byte offset and size of the first kernel of `layer` in a Keras 3 weights file."""
    with h5py.File(path, "r") as f:
        dataset = f["layers"][layer]["vars"]["0"]
        return dataset.id.get_offset(), dataset.id.get_storage_size()


def test_truncated_and_corrupted_files_leave_the_model_unchanged(tmp_path):
    good = tmp_path / "r20.weights.h5"
    kr.ResNet20().save_weights(good)
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    # Still a valid HDF5 file: bytes of the middle of a kernel set to 0xFF (NaN in float32).
    corrupted = tmp_path / "corrupted.weights.h5"
    data = bytearray(good.read_bytes())
    offset, size = _dataset_offset(good)
    data[offset + size // 2 : offset + size // 2 + 8] = b"\xff" * 8
    corrupted.write_bytes(bytes(data))
    with h5py.File(corrupted, "r"):
        pass
    model = kr.ResNet20()
    before = [np.array(w) for w in model.get_weights()]
    for path, message in (
        (truncated, "corrupt or truncated|could not read"),
        (corrupted, "corrupt: layer 'conv1_conv' holds NaN or infinite values"),
    ):
        with pytest.raises(ValueError, match=message):
            kr.load_weights(model, path)
        for old, new in zip(before, model.get_weights()):
            np.testing.assert_array_equal(old, new)


def test_imagenet_cached_file_with_one_flipped_byte_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir()
    kr.ResNet20().save_weights(tmp_path / "r20.weights.h5")  # any HDF5 file: the hash decides
    data = bytearray((tmp_path / "r20.weights.h5").read_bytes())
    data[len(data) // 2] ^= 0x01
    cached.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        weights_lib.imagenet_weights_path("resnet50", include_top=False)


@pytest.mark.parametrize("name, mode", [("ResNet50", "caffe"), ("ResNet50V2", "tf")])
def test_keras_applications_weights_load_into_a_model_with_preprocessing(name, mode, tmp_path):
    reference = _randomize(
        getattr(keras.applications, name)(weights=None, input_shape=SIZE, classifier_activation=None)
    )
    path = tmp_path / f"{name}.weights.h5"
    reference.save_weights(path)
    model = getattr(kr, name)(weights=path, input_shape=SIZE, classifier_activation=None, include_preprocessing=True)
    x = np.random.default_rng(1).integers(0, 256, (2, *SIZE)).astype("uint8")
    expected = reference.predict(kr.preprocess_input(x.astype("float32"), mode=mode), verbose=0)
    actual = model.predict(x, verbose=0)
    assert np.abs(actual - expected).max() / np.abs(expected).max() < 1e-4


def test_own_weights_load_with_preprocessing_on_or_off(tmp_path):
    plain = _randomize(kr.ResNet20(classifier_activation=None))
    inside = kr.ResNet20(classifier_activation=None, include_preprocessing=True)
    for source, target in ((plain, kr.ResNet20), (inside, kr.ResNet20)):
        path = tmp_path / f"{source.name}_{len(source.layers)}.weights.h5"
        _randomize(source, seed=len(source.layers)).save_weights(path)
        for preprocessing in (False, True):
            loaded = target(weights=str(path), classifier_activation=None, include_preprocessing=preprocessing)
            assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), source.get_weights()))
