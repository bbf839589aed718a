"""The ``spectrum`` command line, run in-process through ``main``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from spectrum_parsing.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "group.jpg"


def test_features_writes_every_stride(tiny_models, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.new("RGB", (90, 70), (200, 30, 30)).save(image)
    out = tmp_path / "feats.safetensors"
    assert main(["features", str(image), "--backbone", str(tiny_models["i2tx_config"]), "--out", str(out)]) == 0
    with safe_open(str(out), "pt") as f:
        assert sorted(f.keys()) == ["stride16", "stride32", "stride4", "stride8"]
        for s in (4, 8, 16, 32):
            t = f.get_tensor(f"stride{s}")
            assert t.shape[0] == 1 and t.shape[2:] == (math.ceil(70 / 32) * 32 // s, math.ceil(90 / 32) * 32 // s)
        meta = f.metadata()
    assert json.loads(meta["image_size"]) == [70, 90]
    assert json.loads(meta["backbone"])["type"] == "i2tx"
    assert "stride4" in capsys.readouterr().out


def test_features_on_the_bundled_example_with_several_images(tiny_models, tmp_path):
    assert EXAMPLE.is_file()
    small = tmp_path / "small.jpg"
    Image.open(EXAMPLE).resize((128, 96)).save(small)
    out = tmp_path / "feats"
    args = ["features", str(small), str(small), "--backbone", str(tiny_models["t2i_config"]), "--out", str(out),
            "--save-dtype", "float16"]
    assert main(args) == 0
    with safe_open(str(out / "small.safetensors"), "pt") as f:
        assert str(f.get_tensor("stride8").dtype) == "torch.float16"


@pytest.mark.parametrize("case", ["missing-image", "not-an-image", "bad-config"])
def test_features_errors_are_one_clear_line(case, tiny_models, tmp_path, capsys):
    image = tmp_path / "photo.jpg"
    config = str(tiny_models["i2tx_config"])
    if case == "not-an-image":
        image.write_text("hello")
    elif case == "bad-config":
        Image.new("RGB", (32, 32)).save(image)
        config = str(tmp_path / "bad.json")
        Path(config).write_text(json.dumps({"type": "i2tx", "base_model": "x", "bogus": 1}))
    code = main(["features", str(image), "--backbone", config, "--out", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("spectrum features: error:")
    expected = {"missing-image": "no such file", "not-an-image": "not a readable image", "bad-config": "bogus"}[case]
    assert expected in err[-1]


def test_tiny_models_command(tmp_path, capsys):
    assert main(["tiny-models", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "i2tx.json").is_file()
    assert (tmp_path / "t" / "texdreamer" / "unet" / "adapter_config.json").is_file()


def test_help_does_not_import_torch():
    """``spectrum --help`` took 35 s on a loaded machine: the CLI imports torch only in commands that need it."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom spectrum_parsing.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
            "import spectrum_parsing\nassert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'scipy' not in sys.modules, 'scipy imported'\nprint(spectrum_parsing.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_too_many_labels_for_a_png_are_refused_before_parsing(tiny_model_dir, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    prompts = [arg for k in range(256) for arg in ("--prompt", f"garment {k}")]
    code = main(["parse", str(tmp_path / "x.png"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
                 *prompts])
    err = capsys.readouterr().err
    assert code == 2 and "ids up to 255" in err and not (tmp_path / "o" / "x.json").exists()


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", "tpu"])
def test_unknown_device_is_one_line(device, tmp_path, capsys):
    from spectrum_parsing.cli import main

    image = Path(__file__).resolve().parents[1] / "examples" / "selfie.jpg"
    code = main(["parse", str(image), "--out", str(tmp_path / "o"), "--device", device])
    err = capsys.readouterr().err
    assert code == 2 and "--device" in err and "Traceback" not in err


def test_model_commands_use_every_core_unless_workers_spin(monkeypatch):
    import torch

    from spectrum_parsing.cli import _configure_threads, default_threads

    assert default_threads(2, spinning=False) == 2 and default_threads(8, spinning=False) == 8
    assert default_threads(2, spinning=True) == 1 and default_threads(8, spinning=True) == 7
    assert default_threads(1, spinning=True) == 1
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    assert default_threads(4) == 4
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    assert default_threads(4) == 3
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert default_threads(4) == 4
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("SPECTRUM_THREADS", "3")
        _configure_threads("parse")
        assert torch.get_num_threads() == 3
        monkeypatch.setenv("SPECTRUM_THREADS", "0")
        with pytest.raises(ValueError, match="at least 1"):
            _configure_threads("parse")
        monkeypatch.delenv("SPECTRUM_THREADS")
        torch.set_num_threads(2)
        _configure_threads("tiny-models")  # commands without a model leave torch alone
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_importing_the_package_turns_libgomp_spinning_off_unless_told():
    import os
    import subprocess
    import sys

    probe = "import os, spectrum_parsing; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    run = subprocess.run  # fresh interpreters: the setting is made at import, before torch loads

    assert run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "0"
    told = run([sys.executable, "-c", probe], env={**env, "GOMP_SPINCOUNT": "1000"}, capture_output=True, text=True)
    assert told.stdout.strip() == "1000"
    policy = run([sys.executable, "-c", probe], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                 text=True)
    assert policy.stdout.strip() == "None"
    late = "import torch, os, spectrum_parsing; print(os.environ.get('GOMP_SPINCOUNT'))"  # too late: left alone
    assert run([sys.executable, "-c", late], env=env, capture_output=True, text=True).stdout.strip() == "None"


def test_competitors_option_defaults_to_novel():
    from spectrum_parsing.cli import _load_options, build_parser

    parser = build_parser()
    for argv, mode in ((["parse", "x.jpg"], "novel"), (["parse", "--competitors", "all", "x.jpg"], "all"),
                       (["parse", "x.jpg", "--competitors", "off"], "off")):
        assert _load_options(parser.parse_args(argv))["competitors"] == mode
    with pytest.raises(SystemExit):
        parser.parse_args(["parse", "x.jpg", "--competitors", "some"])


def test_parser_person_option_reaches_the_pipeline(tiny_model_dir):
    """``--parser-person W`` (parse, serve, eval) sets ``TopDownConfig.parser_person``; left out, the default stays."""
    from spectrum_parsing.cli import _load_options, build_parser
    from spectrum_parsing.pipeline import SpectrumPipeline

    parser = build_parser()
    assert _load_options(parser.parse_args(["parse", "x.jpg"]))["parser_person"] is None
    off = _load_options(parser.parse_args(["parse", "x.jpg", "--parser-person", "0"]))
    assert off["parser_person"] == 0.0
    assert SpectrumPipeline.from_pretrained(tiny_model_dir, **off).top_down.parser_person == 0.0
    assert SpectrumPipeline.from_pretrained(tiny_model_dir).top_down.parser_person == 0.6
    assert _load_options(parser.parse_args(["eval", "--dataset", "lip:d", "--parser-person", "0.3"]))[
        "parser_person"] == 0.3
    with pytest.raises(SystemExit):
        parser.parse_args(["parse", "x.jpg", "--parser-person", "2"])


def test_no_peel_option_reaches_the_pipeline(tiny_model_dir):
    """``--no-peel`` (parse, serve, eval) turns peeling off (``TopDownConfig.peel``); left out, it stays on."""
    from spectrum_parsing.cli import _load_options, build_parser
    from spectrum_parsing.pipeline import SpectrumPipeline

    parser = build_parser()
    assert _load_options(parser.parse_args(["parse", "x.jpg"]))["peel"] is None
    off = _load_options(parser.parse_args(["parse", "x.jpg", "--no-peel"]))
    assert off["peel"] is False and SpectrumPipeline.from_pretrained(tiny_model_dir, **off).top_down.peel is False
    assert SpectrumPipeline.from_pretrained(tiny_model_dir).top_down.peel is True
    assert _load_options(parser.parse_args(["eval", "--dataset", "lip:d", "--no-peel"]))["peel"] is False
    assert _load_options(parser.parse_args(["serve", "--no-peel"]))["peel"] is False
