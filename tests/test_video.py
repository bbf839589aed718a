"""Video input: frame decoding, person tracking, ``parse_video`` and ``spectrum parse`` on a video."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spectrum_parsing.batch import expand_inputs
from spectrum_parsing.cli import main
from spectrum_parsing.pipeline import ParsingResult, SpectrumPipeline
from spectrum_parsing.postprocess import PersonInstance, mask_box
from spectrum_parsing.rle import decode_rle
from spectrum_parsing.video import (
    PersonTracker,
    VideoBackendMissingError,
    VideoLoadError,
    iter_frames,
    parse_video,
    probe_video,
    require_av,
)

av = pytest.importorskip("av")

FRAMES, WIDTH, HEIGHT, FPS = 12, 96, 72, 10
RED, BLUE = (220, 40, 40), (40, 60, 220)


def _boxes(t: int) -> list[tuple[int, int, int, int]]:
    """The two "people" at frame t: tall rectangles walking right by 2 px a frame."""
    return [(4 + 2 * t, 10, 26 + 2 * t, 64), (44 + 2 * t, 14, 66 + 2 * t, 68)]


def _frame(t: int) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 235, dtype=np.uint8)
    for (x0, y0, x1, y1), colour in zip(_boxes(t), (RED, BLUE)):
        frame[y0:y1, x0:x1] = colour
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 12-frame 96x72 mpeg4 clip at 10 fps with two coloured rectangles moving slowly."""
    path = tmp_path_factory.mktemp("clip") / "walk.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"qscale": "2"}
        for t in range(FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(t), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# ---------------------------------------------------------------- decoding


def test_iter_frames_and_probe(clip):
    info = probe_video(clip)
    assert info.fps == Fraction(FPS) and (info.width, info.height) == (WIDTH, HEIGHT) and info.frames == FRAMES
    frames = list(iter_frames(clip))
    assert [i for i, _, _ in frames] == list(range(FRAMES))
    for index, time_s, rgb in frames:
        assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
        assert time_s == pytest.approx(index / FPS)
        (x0, y0, x1, y1), (u0, v0, u1, v1) = _boxes(index)
        assert np.abs(rgb[y0 + 4:y1 - 4, x0 + 4:x1 - 4].mean((0, 1)) - RED).max() < 25
        assert np.abs(rgb[v0 + 4:v1 - 4, u0 + 4:u1 - 4].mean((0, 1)) - BLUE).max() < 25
    assert [i for i, _, _ in iter_frames(clip, every=3)] == [0, 3, 6, 9]
    assert [i for i, _, _ in iter_frames(clip, every=2, max_frames=4)] == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="every"):
        list(iter_frames(clip, every=0))


def test_unreadable_and_missing_videos_and_missing_pyav(tmp_path, monkeypatch):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoLoadError, match="bad.mp4"):
        probe_video(bad)
    with pytest.raises(FileNotFoundError):
        list(iter_frames(tmp_path / "nope.mp4"))
    monkeypatch.setitem(sys.modules, "av", None)  # makes ``import av`` fail
    with pytest.raises(VideoBackendMissingError, match=r"\[video\]"):
        require_av()
    assert issubclass(VideoBackendMissingError, ImportError) and issubclass(VideoBackendMissingError, ValueError)


# ---------------------------------------------------------------- tracking


def _person(box: tuple[int, int, int, int], size: tuple[int, int] = (HEIGHT, WIDTH), pid: int = 99) -> PersonInstance:
    mask = torch.zeros(size, dtype=torch.bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return PersonInstance(id=pid, score=0.9, mask=mask, box=mask_box(mask), parts=[])


def test_tracker_keeps_ids_while_people_move_and_swap_order():
    tracker = PersonTracker()
    first = tracker.update_persons([_person(b) for b in _boxes(0)])
    assert [p.id for p in first] == [0, 1]
    for t in range(1, 6):
        persons = [_person(b) for b in _boxes(t)]
        if t % 2:
            persons.reverse()  # list order must not matter
        tracked = tracker.update_persons(persons)
        by_left = sorted(tracked, key=lambda p: p.box[0])
        assert [p.id for p in by_left] == [0, 1]
        assert all(p.box == q.box and p.crop is q.crop for p, q in zip(tracked, persons))  # copies, same order
        assert all(p.id == 99 for p in persons)  # inputs untouched
    assert tracker.active_ids == [0, 1]
    assert {r.id: (r.first_frame, r.last_frame, r.frames) for r in tracker.tracks()} == {0: (0, 5, 6), 1: (0, 5, 6)}


def test_tracker_follows_fast_people_by_their_keypoints():
    """Two people who jump further than their own width between processed frames: their masks no longer
    overlap, so mask IoU alone would give new ids; their poses (keypoints) keep the ids."""
    def pose(x: float) -> np.ndarray:
        return np.array([[x + dx, 10 + 4 * k, 0.9] for k, dx in enumerate([0, 2, -2, 4, -4] * 3 + [1, -1])])

    def person(x0: int, x: float) -> PersonInstance:
        p = _person((x0, 0, x0 + 6, 40), size=(48, 120))
        p.keypoints = pose(x)
        return p

    tracker = PersonTracker()
    assert [p.id for p in tracker.update_persons([person(10, 13), person(60, 63)])] == [0, 1]
    moved = tracker.update_persons([person(68, 63 + 8), person(18, 13 + 8)])  # moved 8 px, more than 6 px width
    assert [p.id for p in moved] == [1, 0]
    plain = PersonTracker()
    plain.update_persons([_person((10, 0, 16, 40), (48, 120)), _person((60, 0, 66, 40), (48, 120))])
    assert [p.id for p in plain.update_persons([_person((18, 0, 24, 40), (48, 120))])] == [2]  # masks alone: new id


def test_tracker_reappearance_within_and_after_max_missed():
    tracker = PersonTracker(min_iou=0.3, max_missed=2)
    a, b = (5, 5, 30, 60), (60, 5, 90, 60)
    assert tracker.assign([_person(a).mask, _person(b).mask]) == [0, 1]
    # b is missing for max_missed updates, then comes back: same id.
    assert tracker.assign([_person(a).mask]) == [0]
    assert tracker.assign([_person(a).mask]) == [0]
    assert tracker.assign([_person(b).mask, _person(a).mask]) == [1, 0]
    # b is missing for max_missed + 1 updates: its track expired, it comes back with a fresh id.
    for _ in range(3):
        assert tracker.assign([_person(a).mask]) == [0]
    assert tracker.active_ids == [0]
    assert tracker.assign([_person(a).mask, _person(b).mask]) == [0, 2]
    # A new person elsewhere gets a fresh id; a far-away jump (IoU < min_iou) is a new person too.
    assert tracker.assign([_person(a).mask, _person(b).mask, _person((35, 0, 55, 20)).mask]) == [0, 2, 3]
    assert tracker.assign([_person((40, 40, 60, 70)).mask]) == [4]
    assert tracker.assign([]) == []
    history = {r.id: r for r in tracker.tracks()}
    assert (history[1].first_frame, history[1].last_frame, history[1].frames) == (0, 3, 2)
    assert history[2].first_frame == 7 and history[4].first_frame == history[4].last_frame == 9


def test_tracker_update_returns_a_new_consistent_result():
    tracker = PersonTracker()
    persons = [_person(b, pid=7 + i) for i, b in enumerate(_boxes(0))]
    result = ParsingResult(persons, np.zeros((HEIGHT, WIDTH), np.int32), ["shirt"], ["shirt", "person"], HEIGHT, WIDTH)
    assert [p.id for p in tracker.update(result).persons] == [0, 1] and [p.id for p in persons] == [7, 8]
    moved = ParsingResult(list(reversed([_person(b, pid=7 + i) for i, b in enumerate(_boxes(1))])), result.label_map,
                          result.labels, result.prompts, HEIGHT, WIDTH)
    tracked = tracker.update(moved, frame=1, time_s=0.1)
    assert tracked is not moved and [p.id for p in moved.persons] == [8, 7]
    assert [p["id"] for p in tracked.to_dict()["persons"]] == [1, 0]
    assert tracker.history[0].last_time_s == 0.1
    with pytest.raises(ValueError, match="size"):
        tracker.assign([_person((0, 0, 4, 4), size=(10, 10)).mask])


# ---------------------------------------------------------------- parse_video and the CLI


def test_parse_video_writes_frames_overlay_video_and_summary(tiny_model_dir, clip, tmp_path):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    out = tmp_path / "out"
    summary = parse_video(pipe, clip, out, prompts=["shirt"], every=2, score_threshold=0.0, progress=False)
    indices = [0, 2, 4, 6, 8, 10]
    assert summary == json.loads((out / "walk.json").read_text())
    assert summary["frames"] == 6 and summary["frame_indices"] == indices and summary["fps"] == FPS
    assert summary["output_fps"] == FPS / 2 and summary["labels"]["1"] == "shirt"
    assert (summary["width"], summary["height"]) == (WIDTH, HEIGHT)

    seen: dict[int, list[int]] = {}
    for index in indices:
        stem = out / "walk" / f"frame_{index:06d}"
        label = Image.open(stem.with_suffix(".png"))
        assert label.mode == "P" and label.size == (WIDTH, HEIGHT)
        assert Image.open(f"{stem}_overlay.png").width == WIDTH
        data = json.loads(stem.with_suffix(".json").read_text())
        assert data["frame"] == index and data["time_s"] == pytest.approx(index / FPS) and data["video"] == "walk.mp4"
        ids = [p["id"] for p in data["persons"]]
        assert len(ids) == len(set(ids))
        for person in data["persons"]:
            assert decode_rle(person["segmentation"]).shape == (HEIGHT, WIDTH)
            seen.setdefault(person["id"], []).append(index)
    tracks = {t["id"]: t for t in summary["tracks"]}
    assert set(tracks) == set(seen)
    for track_id, frames in seen.items():
        t = tracks[track_id]
        assert (t["first_frame"], t["last_frame"], t["frames"]) == (frames[0], frames[-1], len(frames))

    frames = _decode(out / "walk_overlay.mp4")
    assert len(frames) == 6 and frames[0].shape == (HEIGHT, WIDTH, 3)
    info = probe_video(out / "walk_overlay.mp4")
    assert info.fps == Fraction(FPS, 2) and summary["video_codec"] in ("h264", "mpeg4")

    only = parse_video(pipe, clip, tmp_path / "o2", prompts=["shirt"], max_frames=2, formats=("json",), progress=False)
    assert only["frame_indices"] == [0, 1] and only["overlay_video"] is None
    assert sorted(p.name for p in (tmp_path / "o2" / "walk").glob("frame_*")) == ["frame_000000.json",
                                                                               "frame_000001.json"]
    with pytest.raises(ValueError, match="formats"):
        parse_video(pipe, clip, tmp_path / "o3", formats=("gif",))


@pytest.mark.parametrize("mode", ["bottom-up", "top-down"])
def test_frames_in_batches_give_the_same_outputs(tiny_model_dir, clip, tmp_path, mode):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, mode=mode)
    calls: list[int] = []

    def counting(images, **kwargs):
        calls.append(len(images))
        return pipe(images, **kwargs)

    one = parse_video(counting, clip, tmp_path / "one", prompts=["shirt"], max_frames=5, formats=("json",),
                      score_threshold=0.0, progress=False)
    assert calls == [1] * 5
    calls.clear()
    batched = parse_video(counting, clip, tmp_path / "three", prompts=["shirt"], max_frames=5, formats=("json",),
                          score_threshold=0.0, progress=False, batch_size=3)
    assert calls == [3, 2] and one["tracks"] == batched["tracks"]
    for index in one["frame_indices"]:
        a = json.loads((tmp_path / "one" / "walk" / f"frame_{index:06d}.json").read_text())
        b = json.loads((tmp_path / "three" / "walk" / f"frame_{index:06d}.json").read_text())
        assert [p["box"] for p in a["persons"]] == [p["box"] for p in b["persons"]]
    with pytest.raises(ValueError, match="batch_size"):
        parse_video(pipe, clip, tmp_path / "x", batch_size=0)


def test_parse_command_on_a_video(tiny_model_dir, clip, tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / clip.name).write_bytes(clip.read_bytes())
    Image.fromarray(_frame(0)).save(inputs / "still.png")
    (inputs / "notes.txt").write_text("")
    assert [p.name for p in expand_inputs([str(inputs)])] == ["still.png", "walk.mp4"]
    out = tmp_path / "out"
    args = ["parse", str(inputs), "--model", str(tiny_model_dir), "--out", str(out), "--prompt", "shirt",
            "--image-size", "64", "--threshold", "0", "--every", "3", "--max-frames", "3", "--format", "png,json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "parsed 1 of 1 image(s)" in captured.out and "parsed 3 frame(s) of" in captured.out
    assert (out / "still.png").is_file() and not (out / "still_overlay.png").exists()
    summary = json.loads((out / "walk.json").read_text())
    assert summary["frame_indices"] == [0, 3, 6] and summary["every"] == 3 and summary["labels"]["1"] == "shirt"
    assert len(_decode(out / "walk_overlay.mp4")) == 3  # the overlay video is always written
    assert sorted(p.name for p in (out / "walk").glob("frame_*")) == [f"frame_{i:06d}.{ext}" for i in (0, 3, 6)
                                                                 for ext in ("json", "png")]

    assert main(["parse", str(clip), "--every", "0"]) == 2
    assert "--every" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "av", None)
    assert main(["parse", str(clip), "--model", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "spectrum-parsing[video]" in capsys.readouterr().err.strip().splitlines()[-1]


def test_videos_resume_through_the_manifest_like_images(tiny_model_dir, clip, tmp_path, capsys):
    """A rerun skips a video only when the same file was parsed with the same settings; other prompts, another
    --every or a user's own files under its names are refused with one line (kept), --overwrite redoes them."""
    out = tmp_path / "out"
    base = ["parse", str(clip), "--model", str(tiny_model_dir), "--out", str(out), "--image-size", "64",
            "--max-frames", "2", "--format", "json"]
    assert main([*base, "--prompt", "hat"]) == 0
    first = (out / "walk.json").read_text()
    capsys.readouterr()
    assert main([*base, "--prompt", "hat"]) == 0
    assert "skipping 1 input(s)" in capsys.readouterr().err
    for other in (["--prompt", "scarf"], ["--prompt", "hat", "--every", "2"]):
        assert main([*base, *other]) == 1
        err = capsys.readouterr().err
        assert "with other settings" in err and "--overwrite" in err
        assert (out / "walk.json").read_text() == first  # kept
    assert main([*base, "--prompt", "scarf", "--overwrite"]) == 0
    assert json.loads((out / "walk.json").read_text())["labels"]["1"] == "scarf"

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "walk_overlay.mp4").write_bytes(b"the user's own video")
    assert main(["parse", str(clip), "--model", str(tiny_model_dir), "--out", str(mine), "--image-size", "64",
                 "--max-frames", "2", "--prompt", "hat"]) == 1
    assert "no record of what made them" in capsys.readouterr().err
    assert (mine / "walk_overlay.mp4").read_bytes() == b"the user's own video"


def test_an_interrupted_video_publishes_no_partial_overlay(tiny_model_dir, clip, tmp_path):
    from spectrum_parsing.pipeline import SpectrumPipeline

    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    calls = []

    def interrupting(images, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return pipe(images, *args, **kwargs)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        parse_video(interrupting, clip, out, prompts=["hat"], formats=("video",), progress=False)
    assert not (out / "walk_overlay.mp4").exists() and not (out / "walk.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]  # the unfinished file is removed
