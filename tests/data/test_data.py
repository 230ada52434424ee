"""The data package as a whole: importable without TensorFlow, its pipelines serve any Keras backend."""

from data_helpers import run_with_numpy_backend


def test_modules_import_without_tensorflow():
    run_with_numpy_backend(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import keras_resnet.data, keras_resnet.training.evaluation\n"
        "assert 'tensorflow' not in sys.modules\n"
    )


def test_pipelines_serve_another_keras_backend():
    # The pipelines run in tf.data whatever the Keras backend; the numpy backend stands in for jax and torch.
    run_with_numpy_backend(
        "import keras, numpy as np\n"
        "from keras_resnet import data\n"
        "assert keras.backend.backend() == 'numpy'\n"
        "images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)\n"
        "source = data.array_source(images, np.arange(8))\n"
        "statistics = data.image_statistics(source)\n"
        "x, y = next(iter(data.cifar_pipeline(source, training=False, batch_size=8, statistics=statistics)))\n"
        "np.testing.assert_allclose(x, (images - statistics['pixel_mean']) / 255, atol=1e-5)\n"
    )
