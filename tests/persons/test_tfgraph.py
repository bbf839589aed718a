"""The torch ports of MoveNet-MultiPose and BlazePose match TF.js's own outputs (recorded once in fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from spectrum_parsing.hub import ModelLoadError
from spectrum_parsing.persons.tfgraph import (
    _OPS,
    GraphSpec,
    TFGraphModule,
    _same_pad,
    _strided_slice,
    load_graph_model,
    save_graph_model,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "human_models"
WEIGHTS = Path(__file__).resolve().parents[2] / "src" / "spectrum_parsing" / "weights"


@pytest.fixture(scope="module")
def movenet() -> TFGraphModule:
    return load_graph_model(WEIGHTS / "movenet-multipose").eval()


@pytest.mark.parametrize("name,people", [("group", 5), ("two-dancers", 2), ("selfie", 1)])
def test_movenet_port_matches_tfjs(movenet, name, people):
    image = np.asarray(Image.open(FIXTURES / f"movenet_{name}.png"), dtype=np.int32)
    want = load_file(str(FIXTURES / f"movenet_{name}.safetensors"))
    with torch.no_grad():
        got = movenet(torch.from_numpy(image)[None], outputs=[k.replace(".", "/") for k in want])
    for key, value in want.items():
        diff = np.abs(got[key.replace(".", "/")].numpy() - value).max()
        assert diff < 1e-3, f"{key}: max difference {diff:.2e}"
    scores = got["Identity"][0, :, 55].numpy()
    assert (scores > 0.2).sum() == people == (want["Identity"][0, :, 55] > 0.2).sum()


def test_blazepose_port_matches_tfjs():
    model = load_graph_model(WEIGHTS / "blazepose-full").eval()
    crop = np.asarray(Image.open(FIXTURES / "blazepose_crop.png"), dtype=np.float32) / 255.0
    want = load_file(str(FIXTURES / "blazepose_crop.safetensors"))
    with torch.no_grad():
        got = model(torch.from_numpy(crop)[None], outputs=list(want))
    for key, value in want.items():
        scale = max(1.0, float(np.abs(value).max()))  # landmarks are in pixels (0..256): compare relatively
        diff = np.abs(got[key].numpy() - value).max() / scale
        assert diff < 1e-3, f"{key}: max difference {diff:.2e}"
    segmentation = got["Identity_1"][0, ..., 0].numpy() > 0.5
    assert segmentation.mean() > 0.1 and segmentation[128, 128]  # the centred person is segmented


def test_same_padding_matches_tf():
    # TF pads the extra pixel after: size 7, kernel 3, stride 2 -> out 4, total pad 2 -> (1, 1); size 8 -> (0, 1).
    assert _same_pad(7, 3, 2, 1) == (1, 1) and _same_pad(8, 3, 2, 1) == (0, 1) and _same_pad(8, 1, 1, 1) == (0, 0)
    assert _same_pad(16, 5, 1, 1) == (2, 2)


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_same_padding_folded_or_explicit_matches_padded_input(size, stride):
    # stride 1 pads (1, 1): folded into the convolution; stride 2 on an even size pads (0, 1): padded first
    torch.manual_seed(0)
    x, w, b = torch.randn(1, size, size, 4), torch.randn(6, 4, 3, 3), torch.randn(6)
    attr = {"padding": "SAME", "strides": [1, stride, stride, 1], "fused_ops": ["BiasAdd", "Relu6"]}
    got = _OPS["_FusedConv2D"]([x, w, b], attr)
    top, bottom = _same_pad(size, 3, stride, 1)
    padded = torch.nn.functional.pad(x.permute(0, 3, 1, 2), (top, bottom, top, bottom))
    want = torch.nn.functional.conv2d(padded, w, b, stride=stride).clamp(0, 6).permute(0, 2, 3, 1)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_exp_flushes_only_what_float32_cannot_hold_normally():
    x = torch.tensor([-1000.0, -100.0, -80.5, -79.0, -10.0, 0.0, 3.0, 50.0, 100.0])
    exp = _OPS["Exp"]([x], {})
    assert exp[:3].eq(0).all()  # e^x < 1.8e-35 -> 0, as flush-to-zero would
    assert torch.allclose(exp[3:], x[3:].exp(), rtol=1e-6) and exp[-1].isinf()  # overflow unchanged


def test_strided_slice_masks():
    x = torch.arange(24).reshape(2, 3, 4)
    b, e, s = torch.tensor([0, 1, 0]), torch.tensor([0, 3, 2]), torch.tensor([1, 1, 1])
    assert torch.equal(_strided_slice(x, b, e, s, {"begin_mask": 1, "end_mask": 1}), x[:, 1:3, 0:2])
    assert torch.equal(_strided_slice(x, torch.tensor([1]), torch.tensor([2]), torch.tensor([1]),
                                      {"shrink_axis_mask": 1}), x[1])
    assert _strided_slice(x, torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([1, 1]),
                          {"begin_mask": 3, "end_mask": 3, "new_axis_mask": 2}).shape == (2, 1, 3, 4)


def test_unknown_ops_and_damaged_files_are_named(tmp_path, movenet):
    spec = GraphSpec(inputs=["x"], outputs={"y": "y"}, nodes=[{"name": "y", "op": "Erfinv", "inputs": ["x"],
                                                                 "attr": {}}])
    with pytest.raises(NotImplementedError, match="Erfinv"):
        TFGraphModule(spec, {})
    save_graph_model(movenet, tmp_path / "m")
    assert torch.equal(load_graph_model(tmp_path / "m").state_dict()["StatefulPartitionedCall/Reshape_8/shape/2"],
                       movenet.state_dict()["StatefulPartitionedCall/Reshape_8/shape/2"])
    from safetensors.torch import load_file as load_torch
    from safetensors.torch import save_file

    tensors = load_torch(str(tmp_path / "m" / "model.safetensors"))
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="missing constants"):
        load_graph_model(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ModelLoadError, match="not a ported graph model"):
        load_graph_model(tmp_path / "m")
