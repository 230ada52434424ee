"""Reading other frameworks' checkpoints and mapping their tensors onto keras_resnet layers.

A checkpoint is read into `{source layer: [arrays in Keras order]}` (convolution kernels as
`(height, width, in, out)`, BN as `[gamma, beta, mean, variance]`, dense kernels as `(in, out)`);
`keras_resnet.models.weights.set_matching_weights` then sets them, all or nothing. Torch is imported
only to read a `.pth` file.
"""

import json
import os
import re
import sys

import numpy as np

TORCH_SUFFIXES = (".pth", ".pt", ".th", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"


def read_torch_state(path):
    """The tensors of a torch state dict (`.pth`) or a `.safetensors` file, as numpy arrays.

    A training checkpoint's `state_dict` / `model` entry is unwrapped, and the `module.` prefix
    that `DataParallel` adds is dropped.
    """
    if path.endswith(SAFETENSORS_SUFFIX):
        from safetensors.numpy import load_file

        state = load_file(path)
    else:
        # The CUDA build of torch imports triton, which can crash a process that holds TensorFlow.
        sys.modules.setdefault("triton", None)
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"weights {path!r} is not a readable torch state dict: {error}") from None
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict):
            raise ValueError(f"weights {path!r} holds a {type(state).__name__}, not a state dict")
        state = {key: value.float().numpy() for key, value in state.items() if hasattr(value, "numpy")}
    return {re.sub(r"^module\.", "", key): np.asarray(value) for key, value in state.items()}


def torch_groups(state):
    """`{layer prefix: [arrays in Keras order]}` of a torch ResNet state dict."""
    params = {}
    for key, value in state.items():
        prefix, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            params.setdefault(prefix, {})[param] = value
    groups = {}
    for prefix, group in params.items():
        weight = group.get("weight")
        if "running_mean" in group or "running_var" in group:
            groups[prefix] = [group.get(name) for name in ("weight", "bias", "running_mean", "running_var")]
        elif weight is not None and weight.ndim == 4:
            groups[prefix] = [weight.transpose(2, 3, 1, 0)] + ([group["bias"]] if "bias" in group else [])
        elif weight is not None and weight.ndim == 2:
            groups[prefix] = [weight.T] + ([group["bias"]] if "bias" in group else [])
        else:
            groups[prefix] = [group[name] for name in sorted(group)]
    return groups


def torch_name(layer_name, classifier="fc"):
    """The torchvision/timm (or akamaster) prefix of a keras_resnet layer, e.g. `layer1.0.conv2`."""
    if layer_name == "predictions":
        return classifier
    if layer_name in ("conv1_conv", "conv1_bn"):
        return "conv1" if layer_name.endswith("conv") else "bn1"
    match = re.fullmatch(r"conv(\d+)_block(\d+)_(\d+)_(conv|bn)", layer_name)
    if not match:
        return None
    stage, block, index, kind = int(match[1]) - 1, int(match[2]) - 1, int(match[3]), match[4]
    if index == 0:
        return f"layer{stage}.{block}.downsample.{0 if kind == 'conv' else 1}"
    return f"layer{stage}.{block}.{kind}{index}"


def keras_hub_name(layer_name):
    """The keras-hub `ResNetBackbone` layer of a keras_resnet layer, e.g. `stack0_block0_1_conv`."""
    match = re.fullmatch(r"conv(\d+)_block(\d+)_(.+)", layer_name)
    if not match:
        return layer_name  # conv1_conv, conv1_bn, post_bn, predictions
    rest = match[3].replace("preact_bn", "pre_activation_bn")
    return f"stack{int(match[1]) - 2}_block{int(match[2]) - 1}_{rest}"


def read_keras_hub(folder_or_preset, include_top):
    """`{layer name: [arrays]}` of a keras-hub ResNet preset (a folder or a preset name), via keras-hub."""
    import keras_hub

    if not os.path.isdir(folder_or_preset):  # a named preset: keras-hub downloads and caches it
        model = (keras_hub.models.ImageClassifier if include_top else keras_hub.models.Backbone).from_preset(
            folder_or_preset
        )
        backbone = getattr(model, "backbone", model)
    else:
        backbone = keras_hub.models.Backbone.from_preset(folder_or_preset)
        model = backbone
        if include_top and _has(folder_or_preset, "task.json"):
            with open(os.path.join(folder_or_preset, "task.json"), encoding="utf-8") as file:
                task = json.load(file)["config"]
            model = keras_hub.models.ImageClassifier(
                backbone=backbone, num_classes=task["num_classes"], pooling=task.get("pooling", "avg"), activation=None
            )
            model.load_task_weights(os.path.join(folder_or_preset, "task.weights.h5"))
    layers = [*backbone.layers, *(layer for layer in model.layers if layer is not backbone)]
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in layers if layer.weights}


def _has(folder, name):
    return os.path.isfile(os.path.join(folder, name))


def keras_hub_config(folder):
    """The backbone config of a keras-hub preset folder (`config.json`), or `None` if it is not one."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        config = json.load(file)
    return config.get("config", config) if config.get("class_name", "").endswith("ResNetBackbone") else None


def keras_hub_preprocessing(folder):
    """The input pipeline recorded in a keras-hub preset folder's `preprocessor.json`, or `None`."""
    path = os.path.join(folder, "preprocessor.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        config = json.load(file)["config"]
    converter = config.get("image_converter", {}).get("config", {})
    size = converter.get("image_size") or (224, 224)
    scale = np.asarray(converter.get("scale") if converter.get("scale") is not None else 1 / 255, np.float64)
    offset = np.asarray(converter.get("offset") if converter.get("offset") is not None else 0.0, np.float64)
    # keras-hub computes x * scale + offset on 0-255 pixels; on the 0-1 scale that is (x - mean) / std.
    std = np.broadcast_to(1 / (255 * scale), (3,))
    mean = np.broadcast_to(-offset * std, (3,))
    return dict(
        resize_size=int(size[0]),
        crop_size=int(size[0]),
        interpolation=converter.get("interpolation", "bilinear"),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )


def akamaster_permutations(widths):
    """Per stage, the torch channel each keras_resnet channel holds in akamaster's option-A network.

    akamaster pads a stage's new channels on both sides (`planes // 4` zeros before and after), this
    library's `ZeroPadShortcut` at the end; permuting every stage's channels makes the two the same
    function: stage `s` keeps the previous stage's channels first (shifted by the front padding),
    then the padded ones.
    """
    permutations = [np.arange(widths[0])]
    for previous, width in zip(widths, widths[1:]):
        pad = width // 4
        kept = permutations[-1] + pad
        padded = [t for t in range(width) if not pad <= t < pad + previous]
        permutations.append(np.concatenate([kept, padded]))
    return permutations


def permute_akamaster(groups, widths):
    """Reorders the channels of an akamaster state (in `torch_groups` form) to keras_resnet's option A."""
    perms = akamaster_permutations(widths)
    out = dict(groups)

    def conv(prefix, inputs=None, outputs=None):
        if prefix not in out:
            return
        kernel = out[prefix][0]
        kernel = kernel if inputs is None else kernel[:, :, inputs, :]
        kernel = kernel if outputs is None else kernel[:, :, :, outputs]
        out[prefix] = [kernel, *out[prefix][1:]]

    def bn(prefix, outputs):
        if prefix in out:
            out[prefix] = [array[outputs] for array in out[prefix]]

    conv("conv1", outputs=perms[0])
    bn("bn1", perms[0])
    stage_of = {}
    for prefix in groups:
        match = re.fullmatch(r"layer(\d+)\.(\d+)\.conv1", prefix)
        if match:
            stage_of[prefix[: -len(".conv1")]] = (int(match[1]) - 1, int(match[2]))
    for block, (stage, index) in stage_of.items():
        inputs = perms[stage] if index > 0 else perms[max(stage - 1, 0)]
        conv(f"{block}.conv1", inputs=inputs)
        conv(f"{block}.conv2", outputs=perms[stage])
        bn(f"{block}.bn2", perms[stage])
    if "linear" in out:
        kernel, *bias = out["linear"]
        out["linear"] = [kernel[perms[-1], :], *bias]
    return out
