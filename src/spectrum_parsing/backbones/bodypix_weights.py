"""Loading BodyPix (``load_bodypix``) and reading its weights: the TF.js-converted ONNX graphs (mapped onto
:class:`BodyPixMobileNet` names by walking the graph) and our converted ``.safetensors``; ``convert_bodypix``
writes the latter from the former.

Kept apart from the network (:mod:`.bodypix`): only loading and conversion need ``onnx``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..hub import ModelLoadError, resolve_file
from .bodypix import (
    BLOCKS,
    LICENSE,
    OUTPUT_STRIDES,
    PRIOR_HEADS,
    BodyPixBackbone,
    BodyPixConfig,
    BodyPixMobileNet,
)
from .registry import register_backbone

__all__ = ["convert_bodypix", "load_bodypix", "parameter_shapes", "read_bodypix_state", "read_onnx_state",
           "read_safetensors_state"]


def parameter_shapes(output_stride: int = 16) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the full network's parameters (all eight heads): the converted file's keys."""
    return {k: tuple(v.shape) for k, v in BodyPixMobileNet(output_stride).state_dict().items()}


def _check_state(state: dict[str, torch.Tensor], source: str, output_stride: int) -> None:
    """Raise :class:`ModelLoadError` naming missing, unexpected or mis-shaped tensors."""
    expected = parameter_shapes(output_stride)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {expected[k]}"
                    for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or shapes:
        raise ModelLoadError(f"{source}: BodyPix weights do not match the network: missing keys {missing}; "
                             f"unexpected keys {unexpected}; shape mismatches {shapes}")


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def read_onnx_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], int]:
    """Map a BodyPix ONNX graph's initializers to :class:`BodyPixMobileNet` parameter names.

    The tf2onnx initializers are named ``Const_N:0``, so the mapping follows the graph: the trunk convs
    are the Conv nodes feeding a ``Clip`` (ReLU6), in order (``Conv2d_0``, then depthwise/pointwise pairs);
    a head is a Conv reading the last trunk activation, named by the graph output it leads to. Returns the
    state and the graph's output stride (read off the conv strides). Conv attributes are checked against
    the PyTorch architecture, so an unexpected graph fails loudly.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelLoadError("reading BodyPix .onnx weights needs the 'onnx' package "
                             "(or convert them with scripts/convert_bodypix.py)") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as err:
        raise ModelLoadError(f"{path}: not a readable ONNX model ({err})") from None
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def feeds_relu6(node: Any) -> bool:
        return any(c.op_type == "Clip" for c in consumers.get(node.output[0], []))

    def graph_output_of(name: str) -> str | None:
        seen, frontier = set(), [name]
        while frontier:
            current = frontier.pop()
            if current in outputs:
                return current
            for c in consumers.get(current, []):
                if c.op_type in ("Conv", "Clip"):  # another layer: not a head's own output path
                    continue
                for o in c.output:
                    if o not in seen:
                        seen.add(o)
                        frontier.append(o)
        return None

    def tensors(node: Any) -> list[torch.Tensor]:
        missing = [n for n in node.input[1:] if n not in inits]
        if missing:
            raise ModelLoadError(f"{path}: Conv {node.name!r} reads non-constant weights {missing}")
        return [torch.from_numpy(numpy_helper.to_array(inits[n]).copy()) for n in node.input[1:]]

    convs = [n for n in graph.node if n.op_type == "Conv"]
    trunk = [n for n in convs if feeds_relu6(n)]
    if len(trunk) != 1 + 2 * len(BLOCKS):
        raise ModelLoadError(f"{path}: expected {1 + 2 * len(BLOCKS)} ReLU6 convolutions (MobileNetV1 x0.50), "
                             f"found {len(trunk)}")
    strides = [int(_attr(n, "strides", [1, 1])[0]) for n in trunk]
    output_stride = math.prod(strides)
    if output_stride not in OUTPUT_STRIDES:
        raise ModelLoadError(f"{path}: graph output stride {output_stride} is not one of {OUTPUT_STRIDES}")
    reference = BodyPixMobileNet(output_stride)
    layers: list[tuple[str, nn.Conv2d]] = [("conv0", reference.conv0)]
    for i, block in enumerate(reference.blocks):
        layers += [(f"blocks.{i}.depthwise", block.depthwise), (f"blocks.{i}.pointwise", block.pointwise)]

    state: dict[str, torch.Tensor] = {}
    for node, (prefix, module) in zip(trunk, layers):
        got = (list(_attr(node, "strides", [1, 1])), list(_attr(node, "dilations", [1, 1])),
               int(_attr(node, "group", 1)), _attr(node, "auto_pad", b"NOTSET"))
        want = (list(module.stride), list(module.dilation), module.groups)
        if got[:3] != want or (module.kernel_size[0] > 1 and got[3] != b"SAME_UPPER"):
            raise ModelLoadError(f"{path}: Conv {node.name!r} (strides, dilations, group, auto_pad) {got} does not "
                                 f"match {prefix} {want} with SAME padding")
        weight, bias = tensors(node)
        state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weight, bias

    last = trunk[-1].output[0]
    last_act = [c.output[0] for c in consumers.get(last, []) if c.op_type == "Clip"][0]
    for node in convs:
        if node in trunk:
            continue
        if node.input[0] != last_act:
            raise ModelLoadError(f"{path}: unexpected Conv {node.name!r} not reading the last trunk activation")
        head = graph_output_of(node.output[0])
        if head is None:
            raise ModelLoadError(f"{path}: head Conv {node.name!r} leads to no graph output")
        weight, bias = tensors(node)
        state[f"heads.{head}.weight"], state[f"heads.{head}.bias"] = weight, bias
    _check_state(state, str(path), output_stride)
    return state, output_stride


def read_safetensors_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], int | None]:
    """Tensors of a converted file and the output stride in its metadata (None if it has none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as err:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
    stride = metadata.get("output_stride")
    return state, int(stride) if stride is not None else None


def read_bodypix_state(path: str | os.PathLike[str], output_stride: int) -> dict[str, torch.Tensor]:
    """Full-network state from a ``.onnx`` or ``.safetensors`` file, strictly checked for ``output_stride``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        state, file_stride = read_onnx_state(path)
    elif suffix == ".safetensors":
        state, file_stride = read_safetensors_state(path)
    else:
        raise ModelLoadError(f"{path}: BodyPix weights must be a .safetensors or .onnx file")
    if file_stride is not None and file_stride != output_stride:
        raise ModelLoadError(f"{path}: weights are for output stride {file_stride}, config asks {output_stride}")
    _check_state(state, str(path), output_stride)
    return state


@register_backbone("bodypix", BodyPixConfig, lambda workdir: [
    BodyPixConfig(weights=None, trainable=False),
    BodyPixConfig(weights=None, output_stride=8, trainable=False, include_heads=False)])
def load_bodypix(config: BodyPixConfig) -> BodyPixBackbone:
    """Build the backbone a :class:`BodyPixConfig` describes, reading ``config.weights`` if set.

    ``weights=None`` gives a randomly initialised network (to be filled from a trained Spectrum checkpoint).
    Loading is strict: the file must hold exactly the full network's tensors (all eight heads) with the
    right shapes; the heads the backbone does not use are then dropped.
    """
    heads = PRIOR_HEADS if config.include_heads else ()
    net = BodyPixMobileNet(config.output_stride, heads=heads)
    if config.weights is not None:
        path = resolve_file(config.weights)
        state = read_bodypix_state(path, config.output_stride)
        own = net.state_dict()
        net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items() if k in own}, strict=True)
    return BodyPixBackbone(config, net)


def convert_bodypix(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Convert a BodyPix ``.onnx`` file to our ``.safetensors`` (full network, all heads); returns a summary."""
    from safetensors.torch import save_file

    state, output_stride = read_onnx_state(source)
    metadata = {
        "format": "pt",
        "architecture": "bodypix-mobilenetv1-x050",
        "source": Path(source).name,
        "license": LICENSE,
        "output_stride": str(output_stride),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata=metadata)
    return {"out": out, "output_stride": output_stride, "tensors": len(state),
            "parameters": sum(v.numel() for v in state.values()), "metadata": metadata}
