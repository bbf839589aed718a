"""SpectrumModel: end-to-end behaviour on tiny random backbones and the real MiniLM text encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from spectrum_parsing import LossConfig, SpectrumConfig, SpectrumCriterion, SpectrumModel
from spectrum_parsing.backbones import load_backbone_config
from spectrum_parsing.configs import ConfigError, DecoderConfig, TextEncoderConfig
from spectrum_parsing.hub import ModelLoadError
from spectrum_parsing.pipeline import SpectrumPipeline

SMALL_DECODER = DecoderConfig(hidden_dim=32, mask_dim=32, num_queries=8, num_heads=4, encoder_layers=1,
                              encoder_ffn_dim=64, decoder_layers=3, decoder_ffn_dim=64)


@pytest.fixture(scope="module")
def model(tiny_models, i2tx_backbone, minilm) -> SpectrumModel:
    torch.manual_seed(0)
    config = SpectrumConfig(backbone=load_backbone_config(tiny_models["i2tx_config"]),
                            text_encoder=TextEncoderConfig(), decoder=SMALL_DECODER)
    return SpectrumModel.from_config(config, backbone=i2tx_backbone, text_encoder=minilm)


def synthetic_scene(seed: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A grey image with a red box and a blue box at random grid-aligned places; returns (image, masks)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.full((3, size, size), 0.5)
    masks = torch.zeros(2, size, size, dtype=torch.bool)
    y0, x0 = (int(v) * 4 for v in torch.randint(0, (size - 24) // 4, (2,), generator=g))
    masks[0, y0:y0 + 24, x0:x0 + 24] = True
    y1, x1 = (int(v) * 4 for v in torch.randint(0, (size - 28) // 4, (2,), generator=g))
    masks[1, y1:y1 + 20, x1:x1 + 28] = True
    masks[1] &= ~masks[0]
    image[:, masks[0]] = torch.tensor([0.9, 0.1, 0.1])[:, None]
    image[:, masks[1]] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    return image, masks


def grounded_ious(model: SpectrumModel, features, text, masks: list[torch.Tensor]) -> list[float]:
    """IoU of the mask of the query most grounded to each prompt, against that prompt's ground truth."""
    with torch.no_grad():
        out = model(features=features, text_embeds=text)
    probs = out["pred_logits"].softmax(-1)
    pred = F.interpolate(out["pred_masks"], scale_factor=4, mode="bilinear") > 0
    ious = []
    for b, gt in enumerate(masks):
        for k in range(gt.shape[0]):
            q = probs[b, :, k].argmax()
            ious.append(((pred[b, q] & gt[k]).sum() / (pred[b, q] | gt[k]).sum()).item())
    return ious


@pytest.mark.slow
def test_overfits_three_images_with_two_prompts(model):
    """The whole model (frozen tiny I2Tx + frozen MiniLM + decoder) overfits: grounded mask IoU > 0.9."""
    torch.manual_seed(0)
    images, masks = zip(*(synthetic_scene(i) for i in range(3)))
    features = model.extract_features(torch.stack(images))
    text = model.encode_prompts(["shirt", "hat"])
    targets = [{"labels": torch.tensor([0, 1]), "masks": m} for m in masks]
    criterion = SpectrumCriterion(LossConfig(num_points=256))
    before = grounded_ious(model, features, text, list(masks))
    optimizer = torch.optim.AdamW(model.decoder.parameters(), lr=1e-3)
    for _ in range(150):
        loss = criterion(model(features=features, text_embeds=text), targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = grounded_ious(model, features, text, list(masks))
    assert min(after) > 0.9, (before, after)
    assert max(before) < 0.5


def test_frozen_parts_get_no_gradient(model):
    images, masks = synthetic_scene(7)
    out = model(images[None], ["shirt", "hat"])
    criterion = SpectrumCriterion(LossConfig(num_points=256))
    loss = criterion(out, [{"labels": torch.tensor([0, 1]), "masks": masks}])["loss"]
    model.zero_grad(set_to_none=True)
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in model.backbone.parameters())
    assert all(not p.requires_grad and p.grad is None for p in model.text_encoder.parameters())
    decoder_grads = [p.grad for p in model.decoder.parameters()]
    assert all(g is not None for g in decoder_grads)
    assert sum(g.abs().sum() for g in decoder_grads) > 0
    model.train()
    assert not model.backbone.training and not model.text_encoder.training and model.decoder.training
    model.eval()


def test_save_load_round_trip_is_bit_exact(model, tmp_path, i2tx_backbone, minilm):
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    saved = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert all(k.startswith("decoder.") for k in saved), "only trainable parts are saved"
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["backbone"]["type"] == "i2tx" and config["text_encoder"]["type"] == "minilm"

    # Load everything from disk (backbone from the sources the config names), not from the fixtures.
    loaded = SpectrumModel.from_pretrained(tmp_path / "m")
    for (k, a), (k2, b) in zip(model.trainable_state_dict().items(), loaded.trainable_state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and torch.equal(a, b), k
    images = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    model.eval()
    loaded.eval()
    with torch.no_grad():
        a, b = model(images, ["shirt", "hat"]), loaded(images, ["shirt", "hat"])
    assert torch.equal(a["pred_masks"], b["pred_masks"]) and torch.equal(a["pred_logits"], b["pred_logits"])


def test_strict_loading_names_bad_keys(model, tmp_path):
    directory = model.save_pretrained(tmp_path / "m")
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    removed = "decoder.transformer_decoder.grounding.no_object"
    state.pop(removed)
    state["decoder.extra.weight"] = torch.zeros(2)
    save_file(state, str(weights))
    with pytest.raises(ModelLoadError) as err:
        SpectrumModel.from_pretrained(directory, backbone=model.backbone, text_encoder=model.text_encoder)
    assert removed in str(err.value) and "decoder.extra.weight" in str(err.value)

    state = {k: v for k, v in model.trainable_state_dict().items()}
    key = "decoder.transformer_decoder.query_feat.weight"
    state[key] = torch.zeros(3, 3)
    with pytest.raises(ModelLoadError, match="query_feat"):
        model.load_trainable_state_dict(state)


def test_loading_rejects_non_safetensors_and_missing_files(model, tmp_path):
    directory = model.save_pretrained(tmp_path / "m")
    (directory / "model.safetensors").write_bytes(b"\x80\x04not safetensors at all")
    with pytest.raises(ModelLoadError, match="safetensors"):
        SpectrumModel.from_pretrained(directory, backbone=model.backbone, text_encoder=model.text_encoder)
    (directory / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        SpectrumModel.from_pretrained(directory, backbone=model.backbone, text_encoder=model.text_encoder)
    with pytest.raises(ModelLoadError):
        SpectrumModel.from_pretrained(tmp_path / "does-not-exist")


def test_config_round_trip_and_errors(model):
    data = model.config.to_dict()
    again = SpectrumConfig.from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    with pytest.raises(ConfigError, match="bogus"):
        SpectrumConfig.from_dict({**data, "bogus": 1})
    with pytest.raises(ConfigError, match="backbone"):
        SpectrumConfig.from_dict({k: v for k, v in data.items() if k != "backbone"})
    with pytest.raises(ConfigError, match="text_dim"):
        SpectrumModel(model.config.__class__(**{**model.config.__dict__,
                                                "decoder": DecoderConfig(in_channels=model.config.decoder.in_channels,
                                                                         text_dim=7, hidden_dim=32, num_heads=4)}),
                      model.backbone, model.text_encoder)


def test_from_config_fills_channels_from_backbone(model):
    channels = model.backbone.feature_channels()
    assert model.config.decoder.in_channels == {str(s): c for s, c in channels.items()}
    assert model.config.decoder.text_dim == 384


@pytest.mark.slow
def test_parse_groups_parts_by_person(model):
    """Train person + shirt on two people per image, then ``parse`` returns persons each with a shirt."""
    torch.manual_seed(0)
    images, targets, truth = [], [], []
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        image = torch.full((3, 64, 64), 0.8)
        persons, shirts = torch.zeros(2, 64, 64, dtype=torch.bool), torch.zeros(2, 64, 64, dtype=torch.bool)
        for i, x in enumerate((4 + 4 * int(torch.randint(0, 3, (1,), generator=g)), 36)):
            persons[i, 8:60, x:x + 20] = True
            shirts[i, 20:36, x:x + 20] = True
            image[:, persons[i]] = torch.tensor([0.3, 0.25, 0.2])[:, None]
            image[:, shirts[i]] = torch.tensor([0.1, 0.7, 0.2])[:, None]
        images.append(image)
        targets.append({"labels": torch.tensor([0, 0, 1, 1]), "masks": torch.cat([persons, shirts])})
        truth.append((persons, shirts))
    batch = torch.stack(images)
    features = model.extract_features(batch)
    prompts = ["person", "shirt"]
    text = model.encode_prompts(prompts)
    criterion = SpectrumCriterion(LossConfig(num_points=256))
    optimizer = torch.optim.AdamW(model.decoder.parameters(), lr=1e-3)
    for _ in range(200):
        loss = criterion(model(features=features, text_embeds=text), targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    pipe = SpectrumPipeline(model, image_size=64, mode="bottom-up")
    arrays = [(image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image in batch]
    results = pipe(arrays, prompts=["shirt"], ebp=False)
    assert len(results) == 2
    for result, (persons, shirts) in zip(results, truth):
        assert result.prompts == ["shirt", "person"] and result.labels == ["shirt"]
        assert result.label_map.shape == (64, 64)
        assert len(result.persons) == 2
        for person in result.persons:
            gt = max(range(2), key=lambda i: (person.mask & persons[i]).sum())
            iou = (person.mask & persons[gt]).sum() / (person.mask | persons[gt]).sum()
            assert iou > 0.8
            labels = [p.label for p in person.parts]
            assert labels.count("shirt") == 1
            shirt = person.parts[labels.index("shirt")].mask
            assert (shirt & shirts[gt]).sum() / (shirt | shirts[gt]).sum() > 0.8
        # Label map (the pipeline's result type, rendered from the parts): shirt pixels are labelled 1.
        assert (result.label_map[shirts.any(0).numpy()] == 1).mean() > 0.9


def test_forward_rejects_bad_input(model):
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(3, 32, 32), ["hat"])
    with pytest.raises(ValueError, match="empty"):
        model(torch.rand(1, 3, 32, 32), [""])
    with pytest.raises(ValueError, match="images or precomputed features"):
        model(prompts=["hat"])


def test_fine_tuned_backbone_trains_saves_and_loads(tmp_path, minilm):
    """A trainable backbone (BodyPix) gets gradients, is saved with the decoder, and reloads bit-exactly
    without reading its initial weights file."""
    from spectrum_parsing.backbones import load_backbone
    from spectrum_parsing.backbones.bodypix import BodyPixConfig

    torch.manual_seed(0)
    backbone = load_backbone(BodyPixConfig(weights=None, trainable=True))
    config = SpectrumConfig(backbone=BodyPixConfig(weights=str(tmp_path / "initial-weights-gone.safetensors"),
                                                   trainable=True),
                            decoder=SMALL_DECODER)
    model = SpectrumModel.from_config(config, backbone=backbone, text_encoder=minilm)
    images, masks = synthetic_scene(3)
    out = model(images[None], ["shirt", "hat"])
    criterion = SpectrumCriterion(LossConfig(num_points=256))
    loss = criterion(out, [{"labels": torch.tensor([0, 1]), "masks": masks}])["loss"]
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    directory = model.save_pretrained(tmp_path / "m")
    saved = load_file(str(directory / "model.safetensors"))
    assert any(k.startswith("backbone.") for k in saved) and any(k.startswith("decoder.") for k in saved)
    loaded = SpectrumModel.from_pretrained(directory, text_encoder=minilm)
    for k, v in model.trainable_state_dict().items():
        assert torch.equal(v, loaded.trainable_state_dict()[k]), k


class _Exploit:
    """Unpickling this runs ``Path(marker).touch()``: proof of code execution if it ever happens."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_model_files_that_are_truncated_pickled_or_mistyped_give_named_errors(model, tmp_path):
    from pathlib import Path

    from spectrum_parsing.backbones.im2context import load_im2context

    kwargs = {"backbone": model.backbone, "text_encoder": model.text_encoder}
    directory = model.save_pretrained(tmp_path / "m")
    weights = directory / "model.safetensors"
    good = weights.read_bytes()
    # Truncated download.
    weights.write_bytes(good[: len(good) // 3])
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        SpectrumModel.from_pretrained(directory, **kwargs)
    # A pickle (with a payload) where safetensors is expected: refused, and the payload never runs.
    marker = tmp_path / "pwned"
    torch.save({"decoder.x": _Exploit(str(marker))}, weights)
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        SpectrumModel.from_pretrained(directory, **kwargs)
    pth = tmp_path / "i2t_decoder.pth"
    torch.save({"proj.weight": _Exploit(str(marker))}, pth)
    with pytest.raises(ModelLoadError, match="tensors-only"):
        load_im2context(pth)
    fake = tmp_path / "i2t.safetensors"
    fake.write_bytes(pth.read_bytes())
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        load_im2context(fake)
    assert not marker.exists()
    # Wrong dtype: integer tensors for float parameters are named.
    state = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    key = "decoder.transformer_decoder.query_feat.weight"
    state[key] = state[key].to(torch.int32)
    save_file(state, str(weights))
    with pytest.raises(ModelLoadError, match="query_feat"):
        SpectrumModel.from_pretrained(directory, **kwargs)
    # Half-precision weights load (cast to the model's dtype).
    save_file({k: v.half() if v.is_floating_point() else v for k, v in model.trainable_state_dict().items()},
              str(weights))
    loaded = SpectrumModel.from_pretrained(directory, **kwargs)
    assert next(loaded.decoder.parameters()).dtype == torch.float32
    # Broken config.
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        SpectrumModel.from_pretrained(directory, **kwargs)
    assert Path(weights).exists()


def test_config_describes_the_model_only_and_reads_legacy_loss_keys():
    """The loss is training's (experiment.json), not the model's; configs saved with a "loss" still load."""
    from spectrum_parsing.backbones.bodypix import BodyPixConfig

    config = SpectrumConfig(backbone=BodyPixConfig(weights=None))
    assert "loss" not in config.to_dict()
    legacy = {**config.to_dict(), "loss": {"num_points": 2048}}
    assert SpectrumConfig.from_dict(legacy).to_dict() == config.to_dict()
    with pytest.raises(ConfigError, match="unknown key"):
        SpectrumConfig.from_dict({**config.to_dict(), "losses": {}})
