import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
from data_helpers import cifar10_files, cifar_like, messy_folder  # noqa: E402, F401 (the data tests' fixtures)
from pretrained_helpers import resnet18_pth  # noqa: E402, F401 (the fine-tuning tests' torchvision file)


@pytest.fixture(autouse=True)
def restore_keras_globals():
    """Tests may switch the dtype policy or data format; put them back."""
    policy = keras.config.dtype_policy()
    data_format = keras.config.image_data_format()
    yield
    keras.config.set_dtype_policy(policy)
    keras.config.set_image_data_format(data_format)
