"""Training end to end on tiny models: train -> checkpoint -> exact resume -> eval; feature cache; configs."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from spectrum_parsing.configs import ConfigError
from spectrum_parsing.training import ExperimentConfig, OffsetSampler, TrainConfig, build_scheduler, train


def make_lip_dataset(root: Path, n: int = 6) -> Path:
    """Synthetic single-person scenes in the ``image/`` + ``image-parse/`` (LIP ids) layout."""
    (root / "image").mkdir(parents=True)
    (root / "image-parse").mkdir()
    rng = np.random.default_rng(0)
    colours = {13: (230, 180, 150), 5: (200, 30, 30), 9: (30, 30, 160), 2: (20, 10, 5)}
    for i in range(n):
        sem = np.zeros((64, 48), dtype=np.uint8)
        x = int(rng.integers(4, 20))
        sem[6:10, x + 4:x + 16] = 2  # hair
        sem[10:20, x + 4:x + 16] = 13  # face
        sem[20:40, x:x + 20] = 5  # upper clothes
        sem[40:60, x + 2:x + 18] = 9  # pants
        image = np.full((64, 48, 3), 235, dtype=np.uint8)
        for cid, colour in colours.items():
            image[sem == cid] = colour
        Image.fromarray(image).save(root / "image" / f"{i:06d}_0.jpg", quality=95)
        Image.fromarray(sem, mode="L").save(root / "image-parse" / f"{i:06d}_0.png")
    return root


@pytest.fixture(scope="module")
def experiment(tiny_models, tmp_path_factory) -> dict:
    data = make_lip_dataset(tmp_path_factory.mktemp("lip"))
    return {
        "model": {
            "backbone": str(tiny_models["i2tx_config"]),
            "text_encoder": {"type": "minilm"},
            "decoder": {"hidden_dim": 32, "mask_dim": 32, "num_queries": 8, "num_heads": 4, "encoder_layers": 1,
                        "encoder_ffn_dim": 64, "decoder_layers": 3, "decoder_ffn_dim": 64},
            "loss": {"num_points": 256},
        },
        "data": {
            "train": [{"dataset": f"lip:{data}", "split": "all"}],
            "image_size": 64,
            "augment": {"copy_paste": 0.5, "max_people": 3},
            "targets": {"withheld": ["pants"], "num_negative_phrases": 2},
        },
        "train": {"max_steps": 4, "batch_size": 2, "checkpoint_every": 2, "warmup_steps": 1, "log_every": 1,
                  "lr": 1e-3, "seed": 3},
    }


def test_train_checkpoint_resume_is_exact_then_eval(experiment, tmp_path):
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.evaluation import EvalConfig, evaluate
    from spectrum_parsing.modeling import SpectrumModel
    from spectrum_parsing.pipeline import SpectrumPipeline

    config = ExperimentConfig.from_dict({**experiment, "train": {**experiment["train"],
                                                                  "output_dir": str(tmp_path / "a")}})
    final = train(config, progress=False)
    assert (final / "model.safetensors").is_file()
    checkpoint = tmp_path / "a" / "checkpoints" / "step-2"
    assert (checkpoint / "model" / "model.safetensors").is_file() and (checkpoint / "trainer.json").is_file()
    rows = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["loss"])) for r in rows)

    # Resume from step 2 into another directory: identical final weights, bit for bit.
    resumed_cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, output_dir=str(tmp_path / "b")))
    resumed = train(resumed_cfg, resume=str(checkpoint), progress=False)
    a, b = load_file(str(final / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # ...and different from the step-2 weights (training really continued).
    mid = load_file(str(checkpoint / "model" / "model.safetensors"))
    assert any(not torch.equal(a[k], mid[k]) for k in a)

    model = SpectrumModel.from_pretrained(final)
    assert model.config.withheld == ["pants"]
    dataset = open_dataset(experiment["data"]["train"][0]["dataset"], split="all")
    pipe = SpectrumPipeline(model, image_size=64, mode="bottom-up")
    result = evaluate(pipe, dataset, EvalConfig(limit=2, withheld=model.config.withheld))
    assert result["num_images"] == 2 and 0 <= result["miou"] <= 100
    unseen = evaluate(pipe, dataset, EvalConfig(protocol="unseen", limit=2,
                                                 withheld=model.config.withheld))
    assert set(unseen["per_class"]) == {"background", "pants"}


def test_init_from_continues_a_saved_model_and_records_only_still_unseen_categories(experiment, tmp_path):
    """A second stage (``model.init_from``) starts from the saved weights, and a category it trains on is no
    longer recorded as withheld (unseen) in the model it saves."""
    from spectrum_parsing.modeling import SpectrumModel

    first = train(ExperimentConfig.from_dict({**experiment, "train": {**experiment["train"], "max_steps": 2,
                                                                       "output_dir": str(tmp_path / "s1")}}),
                  progress=False)
    assert SpectrumModel.from_pretrained(first).config.withheld == ["pants"]

    def stage2(name: str, lr: float, withheld: list[str]) -> Path:
        return train(ExperimentConfig.from_dict({
            "model": {"init_from": str(first)},
            "data": {**experiment["data"], "targets": {**experiment["data"]["targets"], "withheld": withheld}},
            "train": {**experiment["train"], "max_steps": 1, "lr": lr, "backbone_lr": lr,
                      "output_dir": str(tmp_path / name)}}), progress=False)

    before = load_file(str(first / "model.safetensors"))
    frozen = stage2("s2-lr0", 0.0, ["pants"])  # lr 0: the weights must come back exactly as loaded
    after = load_file(str(frozen / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert SpectrumModel.from_pretrained(frozen).config.withheld == ["pants"]

    moved = stage2("s2", 1e-3, [])  # trains on pants now: it is no longer unseen
    trained = load_file(str(moved / "model.safetensors"))
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    assert SpectrumModel.from_pretrained(moved).config.withheld == []


def test_init_from_experiment_trains_the_earlier_stage_once_in_one_command(experiment, tmp_path):
    """``model.init_from_experiment``: one ``train`` of stage 2 trains stage 1 first, reuses it when it exists,
    and refuses an output directory that holds a run of another config."""
    stage1 = {**experiment, "train": {**experiment["train"], "max_steps": 1, "output_dir": str(tmp_path / "s1")}}
    (tmp_path / "stage1.yaml").write_text(yaml.safe_dump(stage1))
    stage2 = {"model": {"init_from_experiment": str(tmp_path / "stage1.yaml")}, "data": experiment["data"],
              "train": {**experiment["train"], "max_steps": 1, "output_dir": str(tmp_path / "s2")}}
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(stage2))

    final = train(ExperimentConfig.from_yaml(tmp_path / "stage2.yaml"), progress=False)
    first = tmp_path / "s1" / "model" / "model.safetensors"
    assert first.is_file() and (final / "model.safetensors").is_file()
    a, b = load_file(str(first)), load_file(str(final / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # stage 2 trained on from stage 1's weights
    stamp = first.stat().st_mtime_ns
    again = {**stage2, "train": {**stage2["train"], "output_dir": str(tmp_path / "s2b")}}
    train(ExperimentConfig.from_dict(again), progress=False)
    assert first.stat().st_mtime_ns == stamp  # stage 1 was not trained again

    (tmp_path / "stage1.yaml").write_text(yaml.safe_dump({**stage1, "train": {**stage1["train"], "lr": 5e-4}}))
    with pytest.raises(ConfigError, match="holds a run of another config"):
        train(ExperimentConfig.from_dict(again), progress=False)
    with pytest.raises(ConfigError, match="exclusive"):
        ExperimentConfig.from_dict({**stage2, "model": {**stage2["model"], "init_from": str(final)}})


def test_feature_cache_training_matches_the_cached_views(experiment, tmp_path):
    from spectrum_parsing.feature_cache import FeatureCacheDataset, build_feature_cache
    from spectrum_parsing.training import MixtureDataset, build_model, open_sources

    config = ExperimentConfig.from_dict(experiment)
    model = build_model(config)
    data = config.data
    mixture = MixtureDataset(open_sources(data.train), [1.0], 5, data.image_size, data.augment, data.targets, 3)
    cache_dir = build_feature_cache(model, mixture, 5, tmp_path / "cache", shard_size=2, progress=False)
    assert sorted(p.name for p in cache_dir.iterdir()) == ["index.json", "shard-00000.safetensors",
                                                           "shard-00001.safetensors", "shard-00002.safetensors"]
    cache = FeatureCacheDataset(cache_dir, model.backbone.config, data.targets)
    _, (feats, example) = cache[3]
    _, direct = mixture[3]
    h, w = direct.image.shape[-2:]
    image = torch.nn.functional.pad(direct.image, (0, (-w) % 32, 0, (-h) % 32))
    expected = model.extract_features(image[None])
    for s in (4, 8, 16, 32):
        assert torch.allclose(feats[s], expected[s][0], atol=2e-2, rtol=1e-2)  # stored in float16
    assert example.categories == direct.categories and torch.equal(example.masks, direct.masks)

    cached_cfg = ExperimentConfig.from_dict({**experiment, "train": {**experiment["train"], "output_dir": str(
        tmp_path / "c"), "feature_cache": str(cache_dir), "max_steps": 2, "checkpoint_every": 100}})
    assert (train(cached_cfg, progress=False) / "model.safetensors").is_file()

    other = dataclasses.replace(model.backbone.config, timestep=10)
    with pytest.raises(Exception, match="another backbone"):
        FeatureCacheDataset(cache_dir, other)
    _tampered_caches_are_refused(cache_dir, model.backbone.config, tmp_path)


def _tampered_caches_are_refused(cache_dir: Path, backbone, tmp_path: Path) -> None:
    """Every way a cache can lie is one ModelLoadError naming the file, never a traceback or silent training."""
    import shutil

    from spectrum_parsing.feature_cache import FeatureCacheDataset
    from spectrum_parsing.hub import ModelLoadError

    index = json.loads((cache_dir / "index.json").read_text())

    def variant(name: str, edit) -> Path:
        folder = tmp_path / name
        shutil.copytree(cache_dir, folder)
        edit(folder, json.loads(json.dumps(index)))
        return folder

    def write_index(folder: Path, data) -> None:
        (folder / "index.json").write_text(json.dumps(data))

    cases = {
        "missing backbone": lambda f, d: write_index(f, {k: v for k, v in d.items() if k != "backbone"}),
        "entries beyond the shards": lambda f, d: write_index(f, {**d, "num_entries": 50}),
        "shard outside": lambda f, d: write_index(f, {**d, "shards": [{**d["shards"][0], "file": "../x"},
                                                                       *d["shards"][1:]]}),
        "shards not records": lambda f, d: write_index(f, {**d, "shards": [1, 2, 3]}),
        "index not JSON": lambda f, d: (f / "index.json").write_text("{"),
    }
    for name, edit in cases.items():
        with pytest.raises(ModelLoadError, match="index"):
            FeatureCacheDataset(variant(name.replace(" ", "-"), edit), backbone)[0]
    truncated = variant("truncated", lambda f, d: (f / "shard-00001.safetensors").write_bytes(
        (f / "shard-00001.safetensors").read_bytes()[:100]))
    with pytest.raises(ModelLoadError, match="not the shard this cache's index recorded"):
        FeatureCacheDataset(truncated, backbone)[2]
    swapped = variant("swapped", lambda f, d: shutil.copy(f / "shard-00000.safetensors", f / "shard-00001.safetensors"))
    with pytest.raises(ModelLoadError, match="not the shard"):
        FeatureCacheDataset(swapped, backbone)[2]

    def claim_other_backbone(folder: Path, data) -> None:
        data["backbone"] = {**data["backbone"], "timestep": 10}
        write_index(folder, data)

    claimed = variant("claimed", claim_other_backbone)
    with pytest.raises(ModelLoadError, match="built with another backbone"):
        FeatureCacheDataset(claimed)[0]
    unfinished = variant("unfinished", lambda f, d: (f / "index.json").unlink())
    with pytest.raises(ModelLoadError, match="no index.json"):
        FeatureCacheDataset(unfinished, backbone)


def test_experiment_config_yaml_and_errors(experiment, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(experiment))
    config = ExperimentConfig.from_yaml(path)
    assert config.train.max_steps == 4 and config.data.targets.withheld == ["pants"]
    assert json.loads(config.to_json_string())["data"]["train"][0]["split"] == "all"
    with pytest.raises(ConfigError, match="bogus"):
        ExperimentConfig.from_dict({**experiment, "bogus": {}})
    with pytest.raises(ConfigError, match="schedule"):
        ExperimentConfig.from_dict({**experiment, "train": {"schedule": "zigzag"}})
    with pytest.raises(ConfigError, match="does not exist"):
        ExperimentConfig.from_yaml(tmp_path / "missing.yaml")


def _rates(schedule: str, steps: int = 100, warmup: int = 10, **kw) -> list[float]:
    """The learning rate (base 1.0) at every step of a diffusers schedule built from a TrainConfig."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, TrainConfig(max_steps=steps, warmup_steps=warmup, schedule=schedule, **kw))
    rates = []
    for _ in range(steps + 1):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_lr_schedule_and_sampler():
    cosine = _rates("cosine")  # step k runs at diffusers' rate of step k + 1: no step at rate 0
    assert cosine[0] == pytest.approx(0.1) and cosine[4] == pytest.approx(0.5) and cosine[9] == pytest.approx(1.0)
    assert cosine[54] == pytest.approx(0.5) and cosine[99] == pytest.approx(0.0, abs=1e-9)
    assert _rates("cosine", min_lr_ratio=0.1)[99] == pytest.approx(0.1)
    poly = _rates("poly", warmup=0, poly_power=1.0)
    assert poly[49] == pytest.approx(0.5) and poly[99] == pytest.approx(0.0, abs=1e-9)
    assert _rates("poly", warmup=0, min_lr_ratio=0.2)[99] == pytest.approx(0.2)
    assert _rates("constant")[50] == 1.0
    assert list(OffsetSampler(4, 10)) == [4, 5, 6, 7, 8, 9]
    shards = [list(OffsetSampler(4, 12, r, 2)) for r in range(2)]
    assert shards == [[4, 6, 8, 10], [5, 7, 9, 11]]


def test_shipped_configs_parse():
    """Every YAML experiment and backbone JSON under configs/ is valid (catches config rot)."""
    from spectrum_parsing.backbones import backbone_config_from_dict

    root = Path(__file__).resolve().parents[1] / "configs"
    yamls = sorted(root.glob("*.yaml"))
    assert yamls
    for path in yamls:
        config = ExperimentConfig.from_yaml(path)
        assert config.train.max_steps >= 1 and config.data.train, path
    for path in sorted((root / "backbones").glob("*.json")):
        backbone_config_from_dict(json.loads(path.read_text()))


def test_train_and_eval_commands(experiment, tmp_path, capsys):
    """``spectrum train`` then ``spectrum eval --json`` through the CLI."""
    from spectrum_parsing.cli import main

    config = {**experiment, "train": {**experiment["train"], "max_steps": 2, "checkpoint_every": 1}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path), "--output-dir", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "checkpoints" / "step-1" / "trainer.json").is_file()
    capsys.readouterr()
    dataset = experiment["data"]["train"][0]["dataset"]
    assert main(["eval", "--model", str(tmp_path / "run" / "model"), "--dataset", dataset, "--split", "all",
                 "--image-size", "64", "--limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_images"] == 2 and {"miou", "pixel_acc", "per_class"} <= set(result)
    # --background-threshold 1: no prompt score reaches it, so every pixel is background.
    assert main(["eval", "--model", str(tmp_path / "run" / "model"), "--dataset", dataset, "--split", "all",
                 "--image-size", "64", "--limit", "2", "--json", "--background-threshold", "1"]) == 0
    empty = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(not v for k, v in empty["per_class"].items() if k != "background")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", str(tmp_path / "run" / "model"), "--dataset", dataset,
              "--background-threshold", "1.5"])
    assert exit_info.value.code == 2 and "must be in [0, 1]" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "run" / "model"), "--dataset", "nope:/x"]) == 2
    assert "unknown dataset format" in capsys.readouterr().err


def test_backup_folders_are_neither_resumed_nor_rotated_and_damaged_checkpoints_are_named(tmp_path):
    from spectrum_parsing.configs import ConfigError
    from spectrum_parsing.training.checkpoints import _checkpoint_step, _restore_rng, checkpoint_dirs

    root = tmp_path / "checkpoints"
    for name in ("step-2", "step-10", "step-2.bak", "step-2 copy"):
        (root / name).mkdir(parents=True)
        (root / name / "trainer.json").write_text('{"step": 2}')
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-2", "step-10"]
    (root / "step-10" / "trainer.json").write_text('{"step": ')
    with pytest.raises(ConfigError, match=r"step-10/trainer.json: damaged checkpoint file"):
        _checkpoint_step(root / "step-10")
    (root / "step-2" / "trainer.json").write_text('{"step": "two"}')
    with pytest.raises(ConfigError, match="not a non-negative integer"):
        _checkpoint_step(root / "step-2")
    rng = root / "step-2" / "rng-0.safetensors"
    rng.write_bytes(b"\x00" * 5)
    with pytest.raises(ConfigError, match="rng-0.safetensors: damaged RNG state"):
        _restore_rng(rng)


def test_deeply_nested_config_json_is_one_clear_error(tmp_path):
    from spectrum_parsing.configs import ConfigError, read_config_file

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_config_file(path)


def test_unfreeze_backbone_trains_every_fusion_member_and_saves_it(minilm, tmp_path):
    """``model.unfreeze_backbone``: a model trained on a frozen fusion backbone continues with the backbone
    fine-tuned: every member gets gradients, the saved config says trainable, and the saved weights moved."""
    from spectrum_parsing.backbones import BodyPixConfig, EfficientNetLiteConfig, FusionConfig, load_backbone
    from spectrum_parsing.configs import DecoderConfig
    from spectrum_parsing.modeling import SpectrumConfig, SpectrumModel
    from spectrum_parsing.training import build_model

    torch.manual_seed(0)
    backbone = load_backbone(FusionConfig(members=[EfficientNetLiteConfig(variant="lite0", weights=None),
                                                   BodyPixConfig(weights=None, trainable=False)]))
    assert not backbone.trainable
    frozen = SpectrumModel.from_config(SpectrumConfig(backbone=backbone.config, decoder=DecoderConfig(
        hidden_dim=32, mask_dim=32, num_queries=8, num_heads=4, encoder_layers=1, encoder_ffn_dim=64,
        decoder_layers=2, decoder_ffn_dim=64)), backbone=backbone, text_encoder=minilm)
    start = frozen.save_pretrained(tmp_path / "start")
    data = make_lip_dataset(tmp_path / "lip", n=3)
    config = ExperimentConfig.from_dict({
        "model": {"init_from": str(start), "unfreeze_backbone": True},
        "data": {"train": [{"dataset": f"lip:{data}", "split": "all"}], "image_size": 64,
                 "augment": {"copy_paste": 0.0}, "targets": {"skin_union": True}},
        "train": {"max_steps": 2, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3, "backbone_lr": 1e-3,
                  "output_dir": str(tmp_path / "run"), "checkpoint_every": 100}})
    model = build_model(config)
    assert model.backbone.trainable and all(m.trainable for m in model.backbone.members)
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert model.config.input_size == 64  # the size it is trained at
    final = train(config, progress=False)
    saved = json.loads((final / "config.json").read_text())
    assert [m["trainable"] for m in saved["backbone"]["members"]] == [True, True]
    before, after = load_file(str(start / "model.safetensors")), load_file(str(final / "model.safetensors"))
    for member in ("backbone.members.0.", "backbone.members.1."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(member))
    reloaded = SpectrumModel.from_pretrained(final)
    assert reloaded.backbone_trainable


def test_unfreeze_backbone_refuses_a_backbone_that_cannot_be_fine_tuned(experiment, tmp_path):
    from spectrum_parsing.training import build_model

    config = ExperimentConfig.from_dict({**experiment, "model": {**experiment["model"], "unfreeze_backbone": True}})
    with pytest.raises(ConfigError, match="cannot be fine-tuned"):
        build_model(config)
