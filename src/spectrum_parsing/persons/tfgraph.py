"""TensorFlow.js graph models ported to PyTorch: a reader for the TF.js files and a module that runs the graph.

A TF.js graph model is ``NAME.json`` (the TensorFlow ``GraphDef`` as JSON, plus a ``weightsManifest``) and the
weight shards it names (the manifest's tensors concatenated in order; float16/uint8 quantised tensors are
dequantised here with numpy). No TensorFlow is needed.

:func:`read_tfjs_graph` turns those files into a :class:`GraphSpec` (the ops, their inputs and attributes,
plain JSON) and a dict of constant tensors, with convolution filters already in PyTorch's layout.
:class:`TFGraphModule` is an ``nn.Module`` that holds those constants as buffers (so ``.to(device)``,
``state_dict`` and safetensors work as for any module) and evaluates the graph op by op with torch functions:
convolutions as ``F.conv2d`` on channels-last views (no copies), TF's SAME padding reproduced exactly
(asymmetric when TF pads asymmetrically), bilinear resizing with TF's half-pixel centres, and the integer
and indexing ops of the decoding tails (``StridedSlice`` with all its masks, ``GatherNd``, ``TopKV2``...).
The ported graph is checked against outputs recorded from TF.js itself (``tests/fixtures/human_models``).

Only the ops these models use are implemented; an unknown op is an error naming it, at construction.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GraphSpec", "SUPPORTED_OPS", "TFGraphModule", "load_graph_model", "read_tfjs_graph", "save_graph_model"]

_DTYPES = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool, "DT_INT64": torch.int64}
_CONV_OPS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}


@dataclass
class GraphSpec:
    """The ops of a TF graph in evaluation order: ``nodes`` are ``{"name", "op", "inputs", "attr"}`` with
    attributes decoded to plain values; ``inputs``/``outputs`` name the graph's placeholders and results."""

    inputs: list[str]
    outputs: dict[str, str]
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "nodes": self.nodes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphSpec:
        unknown = set(data) - {"inputs", "outputs", "nodes"}
        if unknown:
            raise ValueError(f"graph spec: unknown keys {sorted(unknown)}")
        return cls(inputs=list(data["inputs"]), outputs=dict(data["outputs"]), nodes=list(data["nodes"]))


def _attr_value(value: dict[str, Any]) -> Any:
    """A TF ``AttrValue`` as a plain value (strings decoded from base64, lists of ints/strings)."""
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "s" in items:
            return [base64.b64decode(v).decode() for v in items["s"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    return None


_KEEP_ATTRS = {"strides", "padding", "dilations", "fused_ops", "ksize", "align_corners", "half_pixel_centers",
               "DstT", "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask", "axis",
               "num", "squeeze_dims", "keep_dims", "num_split", "sorted", "output_type", "N", "block_size",
               "Tidx", "explicit_paddings", "epsilon", "data_format", "out_type"}


def _dequantise(raw: bytes, offset: int, spec: dict[str, Any]) -> tuple[np.ndarray, int]:
    shape = [int(s) for s in spec["shape"]]
    count = int(np.prod(shape)) if shape else 1
    quant = spec.get("quantization")
    if quant:
        qdtype = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}[quant["dtype"]]
        size = count * np.dtype(qdtype).itemsize
        values = np.frombuffer(raw, dtype=qdtype, count=count, offset=offset)
        if quant["dtype"] == "float16":
            array = values.astype(np.float32)
        else:  # affine uint8/uint16 quantisation
            array = values.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
    else:
        dtype = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}[spec["dtype"]]
        size = count * np.dtype(dtype).itemsize
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).copy()
    return array.reshape(shape), offset + size


def read_tfjs_graph(model_json: str | os.PathLike[str]) -> tuple[GraphSpec, dict[str, torch.Tensor]]:
    """Read a TF.js graph model (``NAME.json`` + its weight shards) into a :class:`GraphSpec` and constants.

    Convolution filters are returned in PyTorch's layout (``OIHW``; depthwise ``(C*M, 1, kh, kw)``), and the
    nodes that use them are marked ``"torch_layout": True``."""
    path = Path(model_json)
    graph = json.loads(path.read_text())
    specs, shards = [], []
    for group in graph["weightsManifest"]:
        specs += group["weights"]
        shards += [(path.parent / p).read_bytes() for p in group["paths"]]
    raw = b"".join(shards)
    consts: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        consts[spec["name"]], offset = _dequantise(raw, offset, spec)
    if offset != len(raw):
        raise ValueError(f"{path}: the weight shards hold {len(raw)} bytes, the manifest describes {offset}")

    nodes, filters = [], {}
    for node in graph["modelTopology"]["node"]:
        op = node["op"]
        attr = {k: _attr_value(v) for k, v in node.get("attr", {}).items() if k in _KEEP_ATTRS}
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            if node["name"] not in consts:  # a scalar/shape constant stored in the graph itself
                consts[node["name"]] = _inline_const(node)
            continue
        if op in _CONV_OPS:
            filters[inputs[1]] = "depthwise" if "Depthwise" in op else "conv"
            attr["torch_layout"] = True
        nodes.append({"name": node["name"], "op": op, "inputs": inputs, "attr": attr})
    referenced = {i.split(":")[0] for n in nodes for i in n["inputs"]}
    tensors = {}
    for name, array in consts.items():
        if name not in referenced:
            continue
        if filters.get(name) == "conv":  # HWIO -> OIHW
            array = array.transpose(3, 2, 0, 1)
        elif filters.get(name) == "depthwise":  # H W C M -> (C*M, 1, H, W)
            h, w, c, m = array.shape
            array = array.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w)
        tensors[name] = torch.from_numpy(np.array(array, order="C", copy=True))  # keeps 0-d scalars 0-d
    placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]
    outputs = {k: v["name"].split(":")[0] for k, v in graph.get("signature", {}).get("outputs", {}).items()}
    spec = GraphSpec(inputs=placeholders, outputs=outputs,
                     nodes=[n for n in _topological(nodes, set(tensors)) if n["op"] != "Placeholder"])
    return spec, tensors


def _inline_const(node: dict[str, Any]) -> np.ndarray:
    tensor = node["attr"]["value"]["tensor"]
    dtype = {"DT_INT32": np.int32, "DT_FLOAT": np.float32, "DT_BOOL": np.bool_}[tensor["dtype"]]
    shape = [int(d["size"]) for d in tensor.get("tensorShape", {}).get("dim", [])]
    for key in ("intVal", "floatVal", "boolVal"):
        if key in tensor:
            values = np.asarray(tensor[key], dtype=dtype)
            return np.broadcast_to(values, shape).copy() if shape else values.reshape(())
    raise ValueError(f"constant {node['name']!r} has no value")


def _topological(nodes: list[dict[str, Any]], known: set[str]) -> list[dict[str, Any]]:
    by_name = {n["name"]: n for n in nodes}
    done = set(known)
    order: list[dict[str, Any]] = []
    for start in nodes:
        stack = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if node["name"] in done:
                continue
            if expanded:
                done.add(node["name"])
                order.append(node)
                continue
            stack.append((node, True))
            for inp in node["inputs"]:
                base = inp.split(":")[0]
                if base not in done:
                    if base not in by_name:
                        raise ValueError(f"node {node['name']!r} reads {base!r}, which the graph does not define")
                    stack.append((by_name[base], False))
    return order


def _key(name: str) -> str:
    return name.replace(".", "_")


def _same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF's SAME padding for one axis: (before, after); after gets the extra pixel."""
    eff = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _pads(x: torch.Tensor, attr: dict[str, Any], kernel: Sequence[int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of NCHW ``x`` as TF's ``padding`` attribute asks (SAME or EXPLICIT)."""
    padding = attr.get("padding", "VALID")
    strides, dil = attr.get("strides", [1, 1, 1, 1]), attr.get("dilations", [1, 1, 1, 1])
    if padding == "SAME":
        top, bottom = _same_pad(x.shape[2], kernel[0], strides[1], dil[1])
        left, right = _same_pad(x.shape[3], kernel[1], strides[2], dil[2])
        return top, bottom, left, right
    if padding == "EXPLICIT":
        p = attr.get("explicit_paddings", [0] * 8)
        return p[2], p[3], p[4], p[5]
    return 0, 0, 0, 0


def _pad_for(x: torch.Tensor, attr: dict[str, Any], kernel: Sequence[int], value: float = 0.0) -> torch.Tensor:
    """``x`` NCHW padded as TF's ``padding`` attribute asks (SAME or EXPLICIT); VALID leaves it."""
    top, bottom, left, right = _pads(x, attr, kernel)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activation(x: torch.Tensor, fused: Sequence[str]) -> torch.Tensor:
    """A fused convolution's activations, in place (``x`` is the convolution's own fresh output: a new tensor of
    a large map costs more in page faults than the clamp itself)."""
    for op in fused[1:]:
        if op == "Relu":
            x = F.relu(x, inplace=True)
        elif op == "Relu6":
            x = F.relu6(x, inplace=True)
        else:
            raise NotImplementedError(f"fused op {op!r}")
    return x


def _conv(x: torch.Tensor, args: list[torch.Tensor], attr: dict[str, Any], depthwise: bool,
          fused: bool) -> torch.Tensor:
    weight = args[1]
    y = _nchw(x)
    top, bottom, left, right = _pads(y, attr, weight.shape[2:])
    if top == bottom and left == right:  # symmetric: the convolution pads (no padded copy of the input)
        padding = (top, left)
    else:
        y, padding = F.pad(y, (left, right, top, bottom)), (0, 0)
    strides, dil = attr.get("strides", [1, 1, 1, 1]), attr.get("dilations", [1, 1, 1, 1])
    ops = attr.get("fused_ops", []) if fused else []
    if ops and ops[0] != "BiasAdd":
        raise NotImplementedError(f"fused ops {ops}")
    bias = args[2] if ops else None
    y = F.conv2d(y, weight, bias, stride=(strides[1], strides[2]), padding=padding, dilation=(dil[1], dil[2]),
                 groups=y.shape[1] if depthwise else 1)
    return _nhwc(_activation(y, ops))


UNDERFLOW = -80.0
"""exp(x) below e^-80 (1.8e-35) is taken as 0: float32 ``exp`` on CPU leaves its vector path for results near or
under the smallest normal float (``benchmarks/bench_kernels.py``: MoveNet's 512-px keypoint weights 15.3 -> 2.5
ms), and such values change nothing downstream."""


def _exp(x: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        return x.exp()
    return x.clamp_min(UNDERFLOW).exp().masked_fill_(x < UNDERFLOW, 0.0)


def _strided_slice(x: torch.Tensor, begin: torch.Tensor, end: torch.Tensor, strides: torch.Tensor,
                   attr: dict[str, Any]) -> torch.Tensor:
    b, e, s = begin.tolist(), end.tolist(), strides.tolist()
    bm, em = attr.get("begin_mask", 0), attr.get("end_mask", 0)
    elm, nam, sam = attr.get("ellipsis_mask", 0), attr.get("new_axis_mask", 0), attr.get("shrink_axis_mask", 0)
    index: list[Any] = []
    for i in range(len(b)):
        if elm >> i & 1:
            index.append(Ellipsis)
        elif nam >> i & 1:
            index.append(None)
        elif sam >> i & 1:
            index.append(int(b[i]))
        else:
            start = None if bm >> i & 1 else int(b[i])
            stop = None if em >> i & 1 else int(e[i])
            if s[i] < 0:
                raise NotImplementedError("negative StridedSlice strides")
            index.append(slice(start, stop, int(s[i])))
    return x[tuple(index)]


def _select(cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if cond.dim() == 1 and a.dim() > 1:  # TF1 Select: a vector condition picks rows
        cond = cond.reshape(-1, *[1] * (a.dim() - 1))
    return torch.where(cond, a, b)


def _resize_bilinear(x: torch.Tensor, size: torch.Tensor, attr: dict[str, Any]) -> torch.Tensor:
    h, w = (int(v) for v in size.tolist())
    if attr.get("align_corners"):
        y = F.interpolate(_nchw(x), size=(h, w), mode="bilinear", align_corners=True)
    elif attr.get("half_pixel_centers"):
        y = F.interpolate(_nchw(x), size=(h, w), mode="bilinear", align_corners=False)
    else:  # legacy TF: source = dest * in / out, no half-pixel offset
        raise NotImplementedError("ResizeBilinear without half_pixel_centers")
    return _nhwc(y)


def _max_pool(x: torch.Tensor, attr: dict[str, Any]) -> torch.Tensor:
    k, s = attr["ksize"], attr["strides"]
    y = _pad_for(_nchw(x), {**attr, "dilations": [1, 1, 1, 1]}, (k[1], k[2]), value=float("-inf"))
    return _nhwc(F.max_pool2d(y, (k[1], k[2]), (s[1], s[2])))


def _depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    n, h, w, c = x.shape
    y = x.reshape(n, h, w, block, block, c // block**2).permute(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * block, w * block, c // block**2)


def _reduce(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    def run(args: list[torch.Tensor], attr: dict[str, Any]) -> torch.Tensor:
        dims = [int(d) for d in args[1].reshape(-1).tolist()]
        out = args[0]
        for d in sorted((d % out.dim() for d in dims), reverse=True):
            out = fn(out, d, attr.get("keep_dims", False))
        return out
    return run


def _floordiv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point() or b.is_floating_point():
        return torch.floor(a / b)
    return torch.div(a, b, rounding_mode="floor")


_OPS: dict[str, Callable[[list[torch.Tensor], dict[str, Any]], Any]] = {
    "Identity": lambda a, t: a[0],
    "Cast": lambda a, t: a[0].to(_DTYPES[t["DstT"]]),
    "Add": lambda a, t: a[0] + a[1],
    "AddV2": lambda a, t: a[0] + a[1],
    "AddN": lambda a, t: sum(a[1:], a[0]),
    "Sub": lambda a, t: a[0] - a[1],
    "Mul": lambda a, t: a[0] * a[1],
    "RealDiv": lambda a, t: a[0] / a[1],
    "FloorDiv": lambda a, t: _floordiv(a[0], a[1]),
    "Maximum": lambda a, t: torch.maximum(a[0], a[1].to(a[0].dtype)),
    "Minimum": lambda a, t: torch.minimum(a[0], a[1].to(a[0].dtype)),
    "SquaredDifference": lambda a, t: (a[0] - a[1]) ** 2,
    "Abs": lambda a, t: a[0].abs(),
    "Exp": lambda a, t: _exp(a[0]),
    "Reciprocal": lambda a, t: 1.0 / a[0],
    "Sigmoid": lambda a, t: torch.sigmoid(a[0]),
    "Relu": lambda a, t: F.relu(a[0]),
    "Relu6": lambda a, t: F.relu6(a[0]),
    "Less": lambda a, t: a[0] < a[1],
    "Greater": lambda a, t: a[0] > a[1],
    "GreaterEqual": lambda a, t: a[0] >= a[1],
    "Equal": lambda a, t: a[0] == a[1],
    "LogicalAnd": lambda a, t: a[0] & a[1],
    "Select": lambda a, t: _select(a[0], a[1], a[2]),
    "SelectV2": lambda a, t: torch.where(a[0], a[1], a[2]),
    "Shape": lambda a, t: torch.tensor(a[0].shape, dtype=torch.int32, device=a[0].device),
    "Size": lambda a, t: torch.tensor(a[0].numel(), dtype=torch.int32, device=a[0].device),
    "Reshape": lambda a, t: a[0].reshape([int(v) for v in a[1].reshape(-1).tolist()]),
    "Squeeze": lambda a, t: a[0].squeeze(tuple(t["squeeze_dims"])) if t.get("squeeze_dims") else a[0].squeeze(),
    "ExpandDims": lambda a, t: a[0].unsqueeze(int(a[1].reshape(-1)[0])),
    "Pack": lambda a, t: torch.stack(a, dim=t.get("axis", 0)),
    "Unpack": lambda a, t: list(a[0].unbind(t.get("axis", 0))),
    "ConcatV2": lambda a, t: torch.cat(a[:-1], dim=int(a[-1])),
    "Split": lambda a, t: list(a[1].chunk(t["num_split"], dim=int(a[0]))),
    "Tile": lambda a, t: a[0].repeat([int(v) for v in a[1].tolist()]),
    "Fill": lambda a, t: torch.full([int(v) for v in a[0].tolist()], a[1].item(), dtype=a[1].dtype,
                                    device=a[1].device),
    "Range": lambda a, t: torch.arange(a[0].item(), a[1].item(), a[2].item(),
                                       dtype=_DTYPES.get(t.get("Tidx", "DT_INT32"), torch.int32), device=a[0].device),
    "StridedSlice": lambda a, t: _strided_slice(a[0], a[1], a[2], a[3], t),
    "GatherNd": lambda a, t: a[0][tuple(a[1].long().unbind(-1))],
    "TopKV2": lambda a, t: [v if i == 0 else v.to(torch.int32)
                            for i, v in enumerate(torch.topk(a[0], int(a[1]), dim=-1, sorted=True))],
    "ArgMax": lambda a, t: a[0].argmax(int(a[1])).to(_DTYPES[t.get("output_type", "DT_INT64")]),
    "Max": _reduce(lambda x, d, k: x.amax(d, keepdim=k)),
    "Sum": _reduce(lambda x, d, k: x.sum(d, keepdim=k)),
    "Mean": _reduce(lambda x, d, k: x.mean(d, keepdim=k)),
    "Pad": lambda a, t: F.pad(a[0], [int(v) for pair in reversed(a[1].tolist()) for v in pair]),
    "ResizeBilinear": lambda a, t: _resize_bilinear(a[0], a[1], t),
    "MaxPool": lambda a, t: _max_pool(a[0], t),
    "DepthToSpace": lambda a, t: _depth_to_space(a[0], t["block_size"]),
    "Conv2D": lambda a, t: _conv(a[0], a, t, depthwise=False, fused=False),
    "_FusedConv2D": lambda a, t: _conv(a[0], a, t, depthwise=False, fused=True),
    "DepthwiseConv2dNative": lambda a, t: _conv(a[0], a, t, depthwise=True, fused=False),
    "FusedDepthwiseConv2dNative": lambda a, t: _conv(a[0], a, t, depthwise=True, fused=True),
}
SUPPORTED_OPS = frozenset(_OPS)


class TFGraphModule(nn.Module):
    """A TF graph evaluated with torch ops; its constants are buffers (state-dict keys = TF node names with
    ``.`` replaced by ``_``). ``forward(*inputs, outputs=None)`` returns a dict of the requested node outputs
    (default: the graph's signature outputs); 4-D tensors are NHWC as in TF."""

    def __init__(self, spec: GraphSpec, const_shapes: dict[str, tuple[list[int], torch.dtype]]) -> None:
        super().__init__()
        unknown = sorted({n["op"] for n in spec.nodes} - SUPPORTED_OPS)
        if unknown:
            raise NotImplementedError(f"TF ops not supported by the torch port: {unknown}")
        self.spec = spec
        self._needed_cache: dict[tuple[str, ...], set[str]] = {}
        self._const_names = {name: _key(name) for name in const_shapes}
        for name, (shape, dtype) in const_shapes.items():
            self.register_buffer(_key(name), torch.zeros(shape, dtype=dtype))

    @classmethod
    def from_tensors(cls, spec: GraphSpec, tensors: dict[str, torch.Tensor]) -> TFGraphModule:
        """A module holding ``tensors`` (e.g. from :func:`read_tfjs_graph`)."""
        module = cls(spec, {k: (list(v.shape), v.dtype) for k, v in tensors.items()})
        module.load_state_dict({_key(k): v for k, v in tensors.items()}, strict=True)
        return module

    def forward(self, *inputs: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if len(inputs) != len(self.spec.inputs):
            raise ValueError(f"the graph takes {len(self.spec.inputs)} input(s), got {len(inputs)}")
        wanted = list(outputs) if outputs is not None else list(self.spec.outputs.values())
        values: dict[str, Any] = dict(zip(self.spec.inputs, inputs))
        needed = self._needed(wanted)

        def get(ref: str) -> torch.Tensor:
            base, _, idx = ref.partition(":")
            if base in self._const_names:
                return getattr(self, self._const_names[base])
            value = values[base]
            return value[int(idx or 0)] if isinstance(value, list) else value

        for node in self.spec.nodes:
            if node["name"] in needed:
                values[node["name"]] = _OPS[node["op"]]([get(i) for i in node["inputs"]], node["attr"])
        return {name: get(name) for name in wanted}

    def _needed(self, wanted: Sequence[str]) -> set[str]:
        key = tuple(wanted)
        if key not in self._needed_cache:
            by_name = {n["name"]: n for n in self.spec.nodes}
            needed, stack = set(), [w.split(":")[0] for w in wanted]
            while stack:
                name = stack.pop()
                if name in needed or name not in by_name:
                    continue
                needed.add(name)
                stack += [i.split(":")[0] for i in by_name[name]["inputs"]]
            self._needed_cache[key] = needed
        return self._needed_cache[key]


GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "model.safetensors"


def save_graph_model(module: TFGraphModule, directory: str | os.PathLike[str],
                     metadata: dict[str, str] | None = None) -> Path:
    """Write ``graph.json`` (the ops) and ``model.safetensors`` (the constants; float tensors that float16
    holds exactly — the TF.js files store most weights as float16 — are saved as float16)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = {v: k for k, v in module._const_names.items()}
    tensors = {}
    for key, value in module.state_dict().items():
        value = value.detach().cpu().contiguous()
        if value.dtype == torch.float32 and torch.equal(value.half().float(), value):
            value = value.half()
        tensors[names[key]] = value
    (directory / GRAPH_FILE).write_text(json.dumps(module.spec.to_dict()))
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata=metadata or {})
    return directory


def load_graph_model(directory: str | os.PathLike[str]) -> TFGraphModule:
    """Load a ported graph written by :func:`save_graph_model` (float16 constants widened to float32); strict:
    constants the graph reads but the file lacks, or the reverse, are named in a :class:`ModelLoadError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..hub import ModelLoadError

    directory = Path(directory)
    try:
        spec = GraphSpec.from_dict(json.loads((directory / GRAPH_FILE).read_text()))
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise ModelLoadError(f"{directory}: not a ported graph model ({err})") from None
    try:
        referenced = {str(i).split(":")[0] for n in spec.nodes for i in n["inputs"]}
        defined = {n["name"] for n in spec.nodes} | set(spec.inputs)
    except (KeyError, TypeError) as err:  # a node without inputs or name, or not an object
        raise ModelLoadError(f"{directory / GRAPH_FILE}: damaged graph (a node lacks {err})") from None
    missing = sorted(referenced - defined - set(tensors))
    unexpected = sorted(set(tensors) - referenced)
    if missing or unexpected:
        raise ModelLoadError(f"{directory / WEIGHTS_FILE}: missing constants {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
    tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
    try:
        return TFGraphModule.from_tensors(spec, tensors)
    except (NotImplementedError, KeyError, TypeError, ValueError) as err:  # unknown ops, malformed attributes
        raise ModelLoadError(f"{directory / GRAPH_FILE}: not a graph this port runs ({err})") from None
