"""The package version, defined once: `setup.cfg` reads it and `keras_resnet.__version__` re-exports it."""

__version__ = "0.1.0"
