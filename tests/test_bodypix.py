"""BodyPix MobileNetV1 backbone: equivalence with onnxruntime, conversion, strict loading, contract, priors."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from spectrum_parsing.backbones import (
    BodyPixBackbone,
    BodyPixConfig,
    BodyPixMobileNet,
    backbone_config_from_dict,
    load_backbone,
    load_backbone_config,
    load_bodypix,
)
from spectrum_parsing.backbones.bodypix import HEAD_CHANNELS, PART_NAMES, block_geometry
from spectrum_parsing.backbones.bodypix_weights import parameter_shapes, read_onnx_state
from spectrum_parsing.configs import STRIDES, ConfigError
from spectrum_parsing.hub import ModelLoadError

REPO = Path(__file__).resolve().parents[1]
GROUP = REPO / "examples" / "group.jpg"
SAMPLE = "samples/pexels-jack-sparrow-4046265.jpg"
PRIOR_CHANNELS = HEAD_CHANNELS["segments"] + HEAD_CHANNELS["part_heatmaps"]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bodypix_dir(shared_dir: Path) -> Path:
    path = shared_dir / "weights" / "bodypix"
    names = [f"MobileNetV1-x050-stride{s}.onnx" for s in (16, 8)]
    if not all((path / n).is_file() for n in names):
        pytest.skip(f"BodyPix ONNX files {names} not found in {path}")
    pytest.importorskip("onnx", reason="reading the BodyPix ONNX files needs the 'onnx' package")
    return path


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime", reason="the equivalence tests need onnxruntime")


def onnx_path(bodypix_dir: Path, stride: int) -> Path:
    return bodypix_dir / f"MobileNetV1-x050-stride{stride}.onnx"


@pytest.fixture(scope="module")
def sessions(bodypix_dir, ort):
    """onnxruntime sessions per output stride.

    onnxruntime rejects ``auto_pad=SAME_UPPER`` on dilated convs (the stride-8 graph's blocks 7..13), so for
    it those are rewritten with the explicit pads SAME means there (stride 1: d * (k - 1) / 2 each side).
    """
    import onnx
    from onnx import helper

    out = {}
    for stride in (16, 8):
        model = onnx.load(str(onnx_path(bodypix_dir, stride)))
        for node in model.graph.node:
            attrs = {a.name: a for a in node.attribute}
            if node.op_type != "Conv" or max(attrs["dilations"].ints) == 1:
                continue
            assert list(attrs["strides"].ints) == [1, 1] and attrs["auto_pad"].s == b"SAME_UPPER"
            pads = [d * (k - 1) // 2 for d, k in zip(attrs["dilations"].ints, attrs["kernel_shape"].ints)]
            node.attribute.remove(attrs["auto_pad"])
            node.attribute.append(helper.make_attribute("pads", pads + pads))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the tf2onnx graph lists its initializers as inputs: one warning each
        out[stride] = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return out


@pytest.fixture(scope="module")
def nets(bodypix_dir) -> dict[int, BodyPixMobileNet]:
    """Full networks (all heads) loaded from the ONNX initializers."""
    out = {}
    for stride in (16, 8):
        state, file_stride = read_onnx_state(onnx_path(bodypix_dir, stride))
        assert file_stride == stride
        net = BodyPixMobileNet(stride)
        net.load_state_dict(state, strict=True)
        out[stride] = net.eval()
    return out


@pytest.fixture(scope="module")
def converted(bodypix_dir, tmp_path_factory) -> Path:
    """The stride-16 file converted by scripts/convert_bodypix.py."""
    spec = importlib.util.spec_from_file_location("convert_bodypix", REPO / "scripts" / "convert_bodypix.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path_factory.mktemp("bodypix") / "bodypix16.safetensors"
    assert script.main([str(onnx_path(bodypix_dir, 16)), "--out", str(out)]) == 0
    return out


def _photo(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB float32 (H, W, 3) in [0, 1], resized to ``size`` = (width, height) if given."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize(size, Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def _random_bodypix(**kwargs: object) -> BodyPixBackbone:
    torch.manual_seed(0)
    return load_bodypix(BodyPixConfig(**kwargs))


# ---------------------------------------------------------------------------------------------
# equivalence with the ONNX graph
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [16, 8])
@pytest.mark.parametrize("image,size", [
    ("group", (16 * 24 + 1, 16 * 18 + 1)),  # (width, height) of the 16k+1 / 8k+1 form BodyPix runs at
    ("sample", (8 * 40 + 1, 8 * 30 + 1)),
    ("group", (150, 200)),  # not of that form: checks the asymmetric SAME padding too
])
def test_matches_onnxruntime(nets, sessions, shared_dir, stride, image, size):
    path = GROUP if image == "group" else shared_dir / SAMPLE
    x = (_photo(path, size) * 2 - 1)[None]
    session = sessions[stride]
    names = [o.name for o in session.get_outputs()]
    ref = dict(zip(names, session.run(None, {"input": x})))
    assert set(names) == set(HEAD_CHANNELS)
    with torch.no_grad():
        out = nets[stride].forward_onnx_like(torch.from_numpy(x))
    for name in names:
        assert out[name].shape == ref[name].shape, name
        diff = float(np.abs(out[name].numpy() - ref[name]).max())
        assert diff < 1e-3, f"{name}: max abs diff {diff}"
    rows = -(-size[1] // stride)
    assert ref["segments"].shape == (1, rows, -(-size[0] // stride), 1)


def test_graph_facts(bodypix_dir):
    """Strides/dilations read off both graphs agree with the PyTorch architecture; no Pad nodes, only ReLU6."""
    import onnx

    for stride in (16, 8):
        graph = onnx.load(str(onnx_path(bodypix_dir, stride))).graph
        ops = {n.op_type for n in graph.node}
        assert "Pad" not in ops and "BatchNormalization" not in ops and "Relu" not in ops
        clips = [n for n in graph.node if n.op_type == "Clip"]
        assert len(clips) == 27
        assert all({a.name: a.f for a in n.attribute} == {"min": 0.0, "max": 6.0} for n in clips)
        state, file_stride = read_onnx_state(onnx_path(bodypix_dir, stride))
        assert file_stride == stride
        assert {k: tuple(v.shape) for k, v in state.items()} == parameter_shapes(stride)
    assert block_geometry(16)[5:] == [(2, 1)] + [(1, 1)] * 7
    assert block_geometry(8)[5:] == [(1, 1)] + [(1, 2)] * 7


# ---------------------------------------------------------------------------------------------
# conversion and strict loading
# ---------------------------------------------------------------------------------------------


def test_converted_safetensors(converted, bodypix_dir, nets):
    from safetensors import safe_open

    with safe_open(str(converted), framework="pt") as f:
        meta = f.metadata()
    assert meta["license"] == "Apache-2.0" and meta["output_stride"] == "16"
    assert meta["source"] == "MobileNetV1-x050-stride16.onnx"
    state = load_file(str(converted))
    assert sum(v.numel() for v in state.values()) == 604_958
    reference = nets[16].state_dict()
    assert set(state) == set(reference)
    assert all(torch.equal(state[k], reference[k]) for k in state)


def test_onnx_and_safetensors_loading_agree(converted, bodypix_dir):
    from_st = load_bodypix(BodyPixConfig(weights=str(converted), trainable=False))
    from_onnx = load_bodypix(BodyPixConfig(weights=str(onnx_path(bodypix_dir, 16)), trainable=False))
    a, b = from_st.state_dict(), from_onnx.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    images = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(0))
    fa, fb = from_st(images), from_onnx(images)
    assert all(torch.equal(fa[s], fb[s]) for s in STRIDES)


def test_strict_loading(converted, tmp_path):
    state = load_file(str(converted))
    meta = {"output_stride": "16"}

    dropped = dict(state)
    del dropped["heads.part_heatmaps.bias"]
    save_file(dropped, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(ModelLoadError, match=r"missing keys \['heads.part_heatmaps.bias'\]"):
        load_bodypix(BodyPixConfig(weights=str(tmp_path / "missing.safetensors")))

    extra = dict(state, **{"blocks.13.pointwise.weight": torch.zeros(1)})
    save_file(extra, str(tmp_path / "extra.safetensors"), metadata=meta)
    with pytest.raises(ModelLoadError, match=r"unexpected keys \['blocks.13.pointwise.weight'\]"):
        load_bodypix(BodyPixConfig(weights=str(tmp_path / "extra.safetensors")))

    reshaped = dict(state, **{"conv0.bias": torch.zeros(17)})
    save_file(reshaped, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(ModelLoadError, match=r"conv0.bias: file \(17,\) vs model \(16,\)"):
        load_bodypix(BodyPixConfig(weights=str(tmp_path / "shape.safetensors")))

    with pytest.raises(ModelLoadError, match="output stride 16, config asks 8"):
        load_bodypix(BodyPixConfig(weights=str(converted), output_stride=8))
    (tmp_path / "weights.bin").write_bytes(converted.read_bytes())
    with pytest.raises(ModelLoadError, match=".safetensors or .onnx"):
        load_bodypix(BodyPixConfig(weights=str(tmp_path / "weights.bin")))


def test_config_registration_and_paths(converted, tmp_path):
    config = backbone_config_from_dict({"type": "bodypix", "weights": "w.safetensors", "output_stride": 8})
    assert isinstance(config, BodyPixConfig) and config.trainable and config.include_heads
    assert BodyPixConfig.from_dict(json.loads(config.to_json_string())) == config
    with pytest.raises(ConfigError, match="output_stride"):
        backbone_config_from_dict({"type": "bodypix", "output_stride": 32})
    with pytest.raises(ConfigError, match="unknown key"):
        backbone_config_from_dict({"type": "bodypix", "weight": "x"})

    (tmp_path / "bodypix16.safetensors").write_bytes(converted.read_bytes())
    (tmp_path / "backbone.json").write_text(json.dumps({"type": "bodypix", "weights": "bodypix16.safetensors"}))
    loaded = load_backbone_config(tmp_path / "backbone.json")
    assert loaded.weights == str((tmp_path / "bodypix16.safetensors").resolve())
    assert isinstance(load_backbone(loaded), BodyPixBackbone)


# ---------------------------------------------------------------------------------------------
# FeatureBackbone contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_stride,include_heads", [(16, True), (16, False), (8, True)])
def test_feature_shapes_odd_size(output_stride, include_heads):
    backbone = _random_bodypix(output_stride=output_stride, include_heads=include_heads)
    images = torch.rand(2, 3, 100, 70, generator=torch.Generator().manual_seed(1))
    feats = backbone(images)
    assert sorted(feats) == list(STRIDES)
    for s, f in feats.items():
        assert f.shape[0] == 2 and f.shape[-2:] == (128 // s, 96 // s), (s, tuple(f.shape))
    channels = backbone.feature_channels()
    assert channels == {s: f.shape[1] for s, f in feats.items()}
    heads = PRIOR_CHANNELS if include_heads else 0
    if output_stride == 16:
        assert channels == {4: 64, 8: 128, 16: 256 + heads, 32: 256}
        assert torch.equal(feats[32], torch.nn.functional.max_pool2d(feats[16][:, :256], 2))
    else:
        assert channels == {4: 64, 8: 256 + heads, 16: 256, 32: 256}
        assert torch.equal(feats[32], torch.nn.functional.max_pool2d(feats[8][:, :256], 4))


def test_taps_align_with_the_full_network():
    """The cropped taps are the top-left corner of the network run on the image padded to (Hc + 1, Wc + 1)."""
    backbone = _random_bodypix(trainable=False)
    images = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    x = torch.nn.functional.pad(images, (0, 1, 0, 1)) * 2 - 1
    with torch.no_grad():
        acts, heads = backbone.net(x, taps=(3, 5, 13))
    feats = backbone(images)
    assert acts[13].shape[-2:] == (64 // 16 + 1, 96 // 16 + 1)
    assert torch.equal(feats[4], acts[3][..., :16, :24])
    assert torch.equal(feats[8], acts[5][..., :8, :12])
    assert torch.equal(feats[16][:, 256:257], heads["segments"][..., :4, :6])


def test_trainable_backbone_gets_gradients():
    backbone = _random_bodypix(trainable=True)
    assert backbone.freeze() is backbone  # what SpectrumModel calls: it must stay trainable
    assert all(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert backbone.training and backbone.net.training
    backbone.eval()
    assert not backbone.training
    backbone.train(True)
    feats = backbone(torch.rand(1, 3, 64, 64))
    sum(f.square().mean() for f in feats.values()).backward()
    names = ["net.conv0.weight", "net.blocks.12.pointwise.weight", "net.heads.segments.weight"]
    params = dict(backbone.named_parameters())
    for name in names:
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    assert set(backbone.net.heads) == {"segments", "part_heatmaps"}  # unused heads are not built


def test_frozen_backbone():
    backbone = _random_bodypix(trainable=False)
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not backbone.training
    feats = backbone(torch.rand(1, 3, 64, 64))
    assert not any(f.requires_grad for f in feats.values())


def test_config_changes_do_not_leak():
    config = BodyPixConfig(include_heads=False)
    backbone = load_bodypix(config)
    assert backbone.config is config and len(backbone.net.heads) == 0
    with pytest.raises(ValueError, match="output stride"):
        BodyPixBackbone(dataclasses.replace(config, output_stride=8), backbone.net)


# ---------------------------------------------------------------------------------------------
# the pretrained network is real
# ---------------------------------------------------------------------------------------------


def test_pretrained_priors_on_group_photo(converted):
    backbone = load_bodypix(BodyPixConfig(weights=str(converted), trainable=False))
    image = torch.from_numpy(_photo(GROUP)).permute(2, 0, 1)[None]  # 768 x 1024: five people, plain wall
    feats = backbone(image)
    seg = feats[16][0, 256]
    parts = feats[16][0, 257:].argmax(0)
    h, w = seg.shape
    assert (h, w) == (48, 64)

    def region(t: torch.Tensor, y0: float, y1: float, x0: float, x1: float) -> torch.Tensor:
        return t[round(y0 * h): round(y1 * h), round(x0 * w): round(x1 * w)]

    torso = region(seg, 0.5, 0.7, 0.44, 0.53)  # the man in the middle: chest and belly
    wall = region(seg, 0.0, 0.1, 0.0, 0.16)  # top-left corner: bare wall
    assert (torso > 0).all(), torso
    assert (wall < 0).all(), wall
    assert 0.3 < (seg > 0).float().mean() < 0.8
    torso_parts = region(parts, 0.5, 0.7, 0.44, 0.53)
    assert (torso_parts == PART_NAMES.index("torso_front")).float().mean() > 0.8
    face = region(parts, 0.25, 0.33, 0.44, 0.5)  # his face
    assert torch.isin(face, torch.tensor([0, 1])).float().mean() > 0.8
