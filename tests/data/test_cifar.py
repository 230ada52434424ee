"""keras_resnet.data.cifar: the CIFAR python batch files, read without running code."""

import os
import pickle

import numpy as np
import pytest
from data_helpers import CIFAR10_CLASSES, write_pickle

from keras_resnet import data


def test_cifar_source_reads_the_python_batches(cifar10_files):
    root, written = cifar10_files
    train = data.cifar_source(root.parent)  # the folder the archive was extracted into works too
    assert train.class_names == CIFAR10_CLASSES and len(train) == 20
    images, labels = zip(*[(image.numpy(), int(label)) for image, label in train.images()])
    rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(np.stack(images), rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert list(labels) == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert len(data.cifar_source(root, split="test")) == 4


class RunsCode:
    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, exec], ids=["os.system", "exec"])
def test_cifar_source_refuses_a_pickle_that_runs_code(tmp_path, cifar10_files, function):
    root, _ = cifar10_files
    for path in root.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    content = {b"data": RunsCode(function, command), b"labels": [0]}
    write_pickle(tmp_path / "data_batch_3", content, protocol=2)
    refused = r"data_batch_3: refusing to load global '(posix|__builtin__)\.(system|exec)'"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        data.cifar_source(tmp_path)
    assert not marker.exists()
