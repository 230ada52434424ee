"""Training: the trainer and its run folder, callbacks, distribution, evaluation and plotting."""

from keras_resnet.training.run_folder import RUN_FILES, run_callbacks
from keras_resnet.training.trainer import train

__all__ = ["RUN_FILES", "run_callbacks", "train"]
