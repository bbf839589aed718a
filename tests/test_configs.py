"""Config dataclasses: dict/JSON round trips, strict key checking, validation and path resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spectrum_parsing.backbones import DiffusionBackboneConfig, backbone_config_from_dict, load_backbone_config
from spectrum_parsing.configs import ConfigError, DecoderConfig, TextEncoderConfig

I2TX = {"type": "i2tx", "vision_encoder": "owner/vision", "im2context": "owner/i2t"}


def _examples() -> list:
    return [
        DiffusionBackboneConfig(**I2TX, texture_lora="owner/lora", timestep=250, lora_scale=0.5, dtype="bfloat16",
                                feature_layers={"unet": ["up_blocks.0"], "vae_encoder": ["mid_block"]}),
        DiffusionBackboneConfig(type="t2i", base_model="some/model", revision="main"),
        TextEncoderConfig(),
        TextEncoderConfig(type="clip", model="openai/clip", subfolder="text", max_length=32),
        DecoderConfig(in_channels={4: 8, 8: 16, 16: 32, 32: 64}, hidden_dim=64, num_heads=4, num_queries=20),
    ]


@pytest.mark.parametrize("config", _examples(), ids=lambda c: type(c).__name__)
def test_dict_round_trip(config) -> None:
    data = config.to_dict()
    # The dict must be plain JSON data (no tuples, no int keys) so that it survives json.dumps unchanged.
    assert json.loads(json.dumps(data)) == data
    assert type(config).from_dict(data) == config


@pytest.mark.parametrize("config", _examples(), ids=lambda c: type(c).__name__)
def test_json_file_round_trip(config, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config.to_json_file(path)
    assert type(config).from_json_file(path) == config
    assert json.loads(path.read_text()) == config.to_dict()


def test_decoder_in_channels_keys_normalised_to_strings() -> None:
    """Int stride keys (Python) and str keys (JSON) give the same config."""
    a = DecoderConfig(in_channels={4: 8, 8: 16, 16: 32, 32: 64})
    b = DecoderConfig.from_dict(json.loads(a.to_json_string()))
    assert a == b
    assert b.channels(16) == 32


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (DiffusionBackboneConfig, {**I2TX, "vision_encodr": "x"}),
        (TextEncoderConfig, {"type": "minilm", "vision_encodr": 1}),
        (DecoderConfig, {"hidden_dim": 32, "num_heads": 4, "vision_encodr": 3}),
    ],
)
def test_unknown_key_is_named(cls, data) -> None:
    with pytest.raises(ConfigError, match="vision_encodr"):
        cls.from_dict(data)


def test_unknown_key_in_json_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "backbone.json"
    path.write_text(json.dumps({**I2TX, "timesteps": 5}))
    with pytest.raises(ConfigError, match="timesteps"):
        load_backbone_config(path)


def test_from_dict_rejects_non_object() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        TextEncoderConfig.from_dict(["minilm"])  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", ["vision_encoder", "im2context"])
def test_i2tx_needs_vision_encoder_and_im2context(missing: str) -> None:
    data = dict(I2TX)
    del data[missing]
    with pytest.raises(ConfigError, match="i2tx"):
        DiffusionBackboneConfig.from_dict(data)


@pytest.mark.parametrize("extra", ["vision_encoder", "im2context"])
def test_t2i_rejects_vision_encoder_and_im2context(extra: str) -> None:
    with pytest.raises(ConfigError, match="t2i"):
        DiffusionBackboneConfig(type="t2i", **{extra: "owner/x"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "float64"}, "float64"),
        ({"dtype": "fp16"}, "fp16"),
        ({"timestep": 1000}, "timestep"),
        ({"timestep": -1}, "timestep"),
        ({"feature_layers": {"text_encoder": ["x"]}}, "text_encoder"),
    ],
)
def test_bad_backbone_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DiffusionBackboneConfig(**I2TX, **kwargs)


def test_bad_types_rejected() -> None:
    with pytest.raises(ConfigError, match="dinov2"):
        DiffusionBackboneConfig(type="dinov2")
    with pytest.raises(ConfigError, match="bert"):
        TextEncoderConfig(type="bert")
    with pytest.raises(ConfigError, match="model"):
        TextEncoderConfig(type="clip")


@pytest.mark.parametrize("data", [{}, {"type": "dinov2"}, ["i2tx"]])
def test_backbone_config_from_dict_needs_known_type(data) -> None:
    with pytest.raises(ConfigError, match="type"):
        backbone_config_from_dict(data)


def test_load_backbone_config_resolves_relative_paths_against_json_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths that exist next to the JSON become absolute; hub ids and absent paths stay as written."""
    models = tmp_path / "models"
    for sub in ("sd", "lora", "lora/i2uv/vision_encoder"):
        (models / sub).mkdir(parents=True)
    (models / "lora/i2uv/i2t_decoder.pth").write_bytes(b"")
    config_dir = tmp_path / "configs" / "nested"
    config_dir.mkdir(parents=True)
    path = config_dir / "i2tx.json"
    path.write_text(json.dumps({
        "type": "i2tx",
        "base_model": "../../models/sd",
        "texture_lora": "../../models/lora",
        "vision_encoder": "../../models/lora/i2uv/vision_encoder",
        "im2context": "owner/not-local",
    }))
    # The working directory must not matter: only the JSON file's directory does.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_backbone_config(path)
    assert isinstance(config, DiffusionBackboneConfig)
    assert config.base_model == str((models / "sd").resolve())
    assert config.texture_lora == str((models / "lora").resolve())
    assert config.vision_encoder == str((models / "lora/i2uv/vision_encoder").resolve())
    assert config.im2context == "owner/not-local"

    # Also via a relative path to the JSON file itself.
    monkeypatch.chdir(tmp_path)
    again = load_backbone_config(Path("configs/nested/i2tx.json"))
    assert again == config


def test_load_backbone_config_keeps_absolute_paths(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    sd.mkdir()
    path = tmp_path / "sub" / "t2i.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"type": "t2i", "base_model": str(sd)}))
    assert load_backbone_config(path).base_model == str(sd)


def test_load_backbone_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json"):
        load_backbone_config(missing)


def test_invalid_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "t2i",')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_backbone_config(path)
    with pytest.raises(ConfigError, match="not valid JSON"):
        DecoderConfig.from_json_file(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_dim": 30, "num_heads": 4}, "divisible"),
        ({"in_channels": {4: 8, 8: 8, 32: 8}}, r"\[16\]"),
        ({"in_channels": {"4": 8}}, r"\[8, 16, 32\]"),
        ({"decoder_layers": 0}, "decoder_layers"),
        ({"num_queries": 0}, "num_queries"),
    ],
)
def test_decoder_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DecoderConfig(**kwargs)


def test_empty_dict_gives_defaults() -> None:
    assert DecoderConfig.from_dict({}) == DecoderConfig()
    assert TextEncoderConfig.from_dict({}) == TextEncoderConfig()


@pytest.mark.parametrize("key,value,match", [("ebp_prompts", "hair", "list of non-empty strings"),
                                             ("default_prompts", [1, 2], "list of non-empty strings"),
                                             ("withheld", None, "list of non-empty strings"),
                                             ("input_size", 0, r"\[32, 4096\]"), ("input_size", 100000, "4096"),
                                             ("input_size", "320", "integer"), ("person_prompt", "", "non-empty")])
def test_spectrum_config_fields_are_type_checked(key, value, match):
    """``ebp_prompts: "hair"`` used to be scored as the prompts h, a, i, r; sizes were never bounded."""
    from spectrum_parsing.modeling import SpectrumConfig

    data = {"backbone": {"type": "bodypix", "weights": None}, key: value}
    with pytest.raises(ConfigError, match=match):
        SpectrumConfig.from_dict(data)


@pytest.mark.parametrize(("section", "field", "value"), [
    ("decoder", "hidden_dim", 10**9), ("decoder", "num_queries", 3 * 10**7), ("decoder", "decoder_layers", 10**5),
    ("decoder", "encoder_layers", -1), ("decoder", "num_heads", 0), ("decoder", "dropout", 1.5),
    ("decoder", "hidden_dim", True), ("text_encoder", "max_length", 10**7),
])
def test_sizes_from_a_config_are_bounded_before_anything_is_built(section, field, value):
    """A config asking for 10^9 hidden units or 10^5 layers is refused with the field named, not allocated."""
    from spectrum_parsing import SpectrumConfig

    data = {"backbone": {"type": "bodypix"}, section: {field: value}}
    with pytest.raises(ConfigError, match=rf"{section}\.{field}"):
        SpectrumConfig.from_dict(data)


def test_loss_sizes_are_bounded_in_the_training_config():
    from spectrum_parsing.configs import LossConfig

    with pytest.raises(ConfigError, match=r"loss\.num_points"):
        LossConfig.from_dict({"num_points": 10**9})


@pytest.mark.parametrize("size", ["0", "-5", "100000", "big"])
def test_image_size_flag_out_of_range_is_refused(size, capsys):
    from spectrum_parsing.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "x.jpg", "--image-size", size])
    assert exit_info.value.code == 2
    assert "--image-size" in capsys.readouterr().err


def test_training_image_size_and_batch_are_bounded():
    from spectrum_parsing.training import ExperimentConfig

    with pytest.raises(ConfigError, match=r"data\.image_size"):
        ExperimentConfig.from_dict({"data": {"image_size": 0}})
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        ExperimentConfig.from_dict({"train": {"batch_size": 10**6}})


def test_backbone_type_of_the_wrong_json_type_is_one_config_error():
    # Found by fuzzing: {"type": []} raised "unhashable type: 'list'" from the registry lookup.
    from spectrum_parsing.backbones import backbone_config_from_dict as registered_backbone_config
    from spectrum_parsing.configs import ConfigError

    for kind in ([], {}, 3, None):
        with pytest.raises(ConfigError, match="backbone config needs 'type'"):
            registered_backbone_config({"type": kind})


@pytest.mark.parametrize("value", [None, "big", 3, ["a"]])
def test_nested_config_of_the_wrong_json_type_is_one_config_error(value):
    # Found by fuzzing after SpectrumConfig moved to the shared from_dict: {"decoder": null} was accepted.
    from spectrum_parsing.modeling import SpectrumConfig

    with pytest.raises(ConfigError, match="SpectrumConfig.decoder: expected a JSON object"):
        SpectrumConfig.from_dict({"backbone": {"type": "bodypix", "weights": None}, "decoder": value})


def test_training_yaml_reads_yaml_12_numbers_and_refuses_aliases_bombs_and_wrong_types(tmp_path):
    from spectrum_parsing.training import ExperimentConfig

    def load(text: str) -> ExperimentConfig:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        return ExperimentConfig.from_yaml(path)

    assert load("train: {lr: 1e-4, backbone_lr: 2.5E-5}").train.lr == 1e-4  # YAML 1.1 would read a string
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
    with pytest.raises(ConfigError, match="aliases"):
        load(bomb)
    for text, match in [("train: {lr: soon}", "train.lr|TrainConfig.lr"), ("train: {log_every: 0}", "log_every"),
                        ("train: {checkpoint_every: 0}", "checkpoint_every"),
                        ("train: {warmup_steps: soon}", "warmup_steps"), ("train: {device: tpu}", "device"),
                        ("data: {augment: {max_degrees: .inf}}", "max_degrees"),
                        ("data: {augment: {max_people: 100000}}", "max_people"),
                        ("train: {batch_size: 10000000}", "batch_size"), ("train: {lr: .nan}", "lr")]:
        with pytest.raises(ConfigError, match=match):
            load(text)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        ExperimentConfig.from_yaml(big)
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match="larger than|NUL"):
            ExperimentConfig.from_yaml("/dev/zero")
    with pytest.raises(ConfigError, match="is a folder"):
        ExperimentConfig.from_yaml(tmp_path)


def test_cli_counts_and_server_limits_are_checked_before_anything_loads(capsys):
    from spectrum_parsing.cli import build_parser

    parser = build_parser()
    for argv in (["cache-features", "--config", "c.yaml", "--out", "o", "--entries", "-3"],
                 ["cache-features", "--config", "c.yaml", "--out", "o", "--entries", "4", "--shard-size", "0"],
                 ["serve", "--port", "70000"], ["serve", "--max-upload-mb", "inf"], ["serve", "--timeout", "nan"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2
    assert "must be in" in capsys.readouterr().err


def test_damaged_inputs_of_every_kind_are_one_line_errors(tmp_path):
    """Fusions of hundreds of members, damaged MoveNet graphs and garbage CCP .mat files: one clear error."""
    import shutil

    from spectrum_parsing.backbones import backbone_config_from_dict
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.hub import ModelLoadError
    from spectrum_parsing.persons import load_graph_model
    from spectrum_parsing.persons.types import WEIGHTS_DIR

    with pytest.raises(ConfigError, match="at most 8 members"):
        backbone_config_from_dict({"type": "fusion", "members": [{"type": "movenet"}] * 500})
    graph = tmp_path / "movenet"
    shutil.copytree(WEIGHTS_DIR / "movenet-multipose", graph)
    spec = json.loads((graph / "graph.json").read_text())
    original = json.dumps(spec)
    spec["nodes"][5]["op"] = "NoSuchOp"
    (graph / "graph.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="not a graph this port runs"):
        load_graph_model(graph)
    spec = json.loads(original)
    del spec["nodes"][5]["inputs"]
    (graph / "graph.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="damaged graph"):
        load_graph_model(graph)
    ccp = tmp_path / "ccp"
    (ccp / "photos").mkdir(parents=True)
    (ccp / "annotations" / "pixel-level").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(ccp / "photos" / "0001.jpg")
    (ccp / "annotations" / "pixel-level" / "0001.mat").write_bytes(b"garbage, not MATLAB")
    data = open_dataset(f"ccp:{ccp}")
    with pytest.raises(ValueError, match="0001.mat: not a readable MATLAB file"):
        data.load("0001")
    import scipy.io

    scipy.io.savemat(ccp / "annotations" / "pixel-level" / "0001.mat", {"wrong": np.zeros((8, 8))})
    with pytest.raises(ValueError, match="no variable 'groundtruth'"):
        data.load("0001")
