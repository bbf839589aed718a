"""``spectrum parse --engine ray``: a Ray Data pipeline that writes exactly what the local engine writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spectrum_parsing.cli import main

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'spectrum-parsing[distributed]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'spectrum-parsing[distributed]')")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "group.jpg"


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the whole module."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def inputs(tmp_path) -> Path:
    """Three 96x72 crops of the bundled example and one broken file."""
    folder = tmp_path / "in"
    folder.mkdir()
    with Image.open(EXAMPLE) as image:
        image = image.convert("RGB")
        w, h = image.size
        boxes = [(0, 0, w, h), (0, 0, w * 2 // 3, h), (w // 4, h // 8, w, h)]
        for i, box in enumerate(boxes):
            image.crop(box).resize((96, 72)).save(folder / f"img{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    return folder


@pytest.mark.slow
def test_ray_engine_writes_what_the_local_engine_writes(local_ray, tiny_model_dir, inputs, tmp_path, capsys):
    common = [str(inputs), "--model", str(tiny_model_dir), "--image-size", "96", "--device", "cpu", "--threshold", "0"]
    start = time.perf_counter()
    assert main(["parse", *common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 1
    ray_captured = capsys.readouterr()
    # Ray runs each actor with one torch thread (OMP_NUM_THREADS=1); so does the local run, for bitwise-equal floats.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["parse", *common, "--out", str(tmp_path / "local")]) == 1
    finally:
        torch.set_num_threads(threads)
    local_captured = capsys.readouterr()
    assert time.perf_counter() - start < 120

    assert "parsed 3 of 4 image(s)" in ray_captured.out and "; 1 failed" in ray_captured.out
    ray_summary = ray_captured.out.splitlines()[-1].replace(str(tmp_path / "ray"), str(tmp_path / "local"))
    assert ray_summary == local_captured.out.splitlines()[-1]
    assert "broken.jpg" in ray_captured.err
    found = 0
    for i in range(3):
        stem = f"img{i}"
        for name in (f"{stem}.png", f"{stem}_overlay.png"):
            with Image.open(tmp_path / "ray" / name) as a, Image.open(tmp_path / "local" / name) as b:
                assert a.mode == b.mode and a.size == b.size and a.width == 96
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        ray_json = json.loads((tmp_path / "ray" / f"{stem}.json").read_text())
        assert ray_json == json.loads((tmp_path / "local" / f"{stem}.json").read_text())
        found += len(ray_json["persons"])
    assert found, "the comparison should cover some persons"
    for engine in ("ray", "local"):
        assert not list((tmp_path / engine).glob("broken*"))


def test_ray_engine_refuses_videos(local_ray, tiny_model_dir, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    code = main(["parse", str(video), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--engine", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("spectrum parse: error:") and "--engine local" in err[-1]
