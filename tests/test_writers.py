"""Outputs: atomic writes, unique names, no overwrite without --overwrite, and resuming an interrupted run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from spectrum_parsing.cli import main
from spectrum_parsing.writers import (
    atomic_save_image,
    atomic_write,
    atomic_write_text,
    output_names,
    pending_formats,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_pngs_are_written_fast_and_lossless_jpegs_stay_jpegs(tmp_path):
    """PNG outputs use a faster zlib level than Pillow's default (a larger file, the same pixels)."""
    photo = Image.open(EXAMPLES / "selfie.jpg").convert("RGB")
    fast = atomic_save_image(photo, tmp_path / "fast.png")
    photo.save(tmp_path / "default.png")
    assert Image.open(fast).tobytes() == photo.tobytes()
    assert fast.stat().st_size > (tmp_path / "default.png").stat().st_size  # level 3, not Pillow's 6
    jpeg = atomic_save_image(photo, tmp_path / "x.jpg", format="JPEG")
    assert Image.open(jpeg).format == "JPEG"


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_text(target, "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # no temporary file left


def test_output_names_are_unique_and_stable():
    paths = [Path("a/x.jpg"), Path("b/x.png"), Path("c/X.jpg"), Path("d/y.jpg"), Path("e/x__2.jpg")]
    names = output_names(paths)
    assert [names[p] for p in paths] == ["x", "x__2", "X__3", "y", "x__2__2"]
    assert len(set(n.lower() for n in names.values())) == len(paths)
    assert output_names(paths) == names


def test_pending_formats(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    assert pending_formats(tmp_path, "x", ["png", "json"]) == ["json"]
    assert pending_formats(tmp_path, "x", ["png", "json"], overwrite=True) == ["png", "json"]


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".spectrum-manifest.json"}  # the manifest is rewritten after each batch


def test_parse_resumes_skips_finished_inputs_and_only_overwrites_when_asked(tiny_model_dir, tmp_path, capsys):
    images = tmp_path / "in"
    (images / "one").mkdir(parents=True)
    (images / "two").mkdir()
    photo = Image.open(EXAMPLES / "group.jpg")
    photo.resize((96, 72)).save(images / "one" / "p.jpg")
    photo.resize((64, 80)).save(images / "two" / "p.jpg")  # same stem: must not clobber the first one
    photo.resize((80, 64)).save(images / "q.jpg")
    out = tmp_path / "out"
    args = ["parse", str(images), "--model", str(tiny_model_dir), "--out", str(out), "--prompt", "shirt",
            "--image-size", "96", "--threshold", "0", "--format", "png,json,masks"]
    assert main(args) == 0
    first = _mtimes(out)
    assert {"p.json", "p__2.json", "q.json", "p.png", "p__2.png", "q.png"} <= set(first)
    assert json.loads((out / "p__2.json").read_text())["height"] == 80  # two/p.jpg, not one/p.jpg
    tool_files = {".spectrum-output", ".spectrum-manifest.json"}
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name not in tool_files]  # no temp files
    capsys.readouterr()

    # Everything done: nothing is parsed again, nothing is touched (not even the model is loaded).
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "skipping 3 input(s)" in captured.err and "loaded model" not in captured.err
    assert _mtimes(out) == first

    # An interrupted run: q's JSON and p__2's label map are missing. Only those are written.
    (out / "q.json").unlink()
    (out / "p__2.png").unlink()
    os.utime(out / "q.png", ns=(1, 1))  # marks a file that must not be rewritten
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "parsed 2 of 2" in captured.out and "1 already done" in captured.out
    now = _mtimes(out)
    assert now["q.png"] == 1 and (out / "q.json").is_file() and (out / "p__2.png").is_file()
    assert {k: v for k, v in now.items() if k not in ("q.json", "p__2.png")} == \
        {k: v for k, v in first.items() if k not in ("q.json", "p__2.png", "q.png")} | {"q.png": 1}

    # --overwrite redoes everything.
    assert main([*args, "--overwrite"]) == 0
    assert "parsed 3 of 3" in capsys.readouterr().out
    assert _mtimes(out)["q.png"] != 1


def test_parse_refuses_images_above_max_pixels_and_reports_them(tiny_model_dir, tmp_path, capsys):
    Image.open(EXAMPLES / "group.jpg").resize((120, 90)).save(tmp_path / "big.jpg")
    Image.open(EXAMPLES / "group.jpg").resize((40, 30)).save(tmp_path / "small.jpg")
    (tmp_path / "zero.jpg").write_bytes(b"")
    code = main(["parse", str(tmp_path / "big.jpg"), str(tmp_path / "small.jpg"), str(tmp_path / "zero.jpg"),
                 "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"), "--max-pixels", "5000",
                 "--prompt", "shirt", "--image-size", "64"])
    assert code == 1
    captured = capsys.readouterr()
    assert "parsed 1 of 3 image(s)" in captured.out and "2 failed" in captured.out
    failed = [line for line in captured.err.splitlines() if line.startswith("  failed:")]
    assert len(failed) == 2
    assert "big.jpg: 120x90 is 0.0 megapixels, above the limit" in failed[0]
    assert "zero.jpg: empty file" in failed[1]
    assert "Traceback" not in captured.err


# --- Nothing lost, nothing outside --out ------------------------------------------------------------------

def test_safe_name_cannot_leave_or_hide_in_the_folder():
    from spectrum_parsing.writers import safe_name

    assert safe_name("..") == "image" and safe_name("...") == "image" and safe_name(".") == "image"
    assert safe_name(".hidden") == "hidden" and safe_name("a/b\\c") == "a_b_c"
    assert safe_name("x\x00y\x1b") == "x_y_" and safe_name("dé jà") == "dé jà"
    assert len(safe_name("é" * 200).encode()) <= 120
    names = output_names([Path("in/...jpg"), Path("in/..jpg"), Path("in/.x.jpg")])
    assert list(names.values()) == ["image", "image__2", "x"]


def test_output_paths_stay_inside_out(tmp_path):
    from spectrum_parsing.writers import OutputConflictError, inside, output_paths

    with pytest.raises(OutputConflictError):
        output_paths(tmp_path, "..", ["masks"])
    with pytest.raises(OutputConflictError):
        inside(tmp_path, tmp_path / ".." / "x.png")
    with pytest.raises(OutputConflictError):
        inside(tmp_path, tmp_path)


def _sentinel_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("filename", ["...jpg", "..jpg", "data.jpg"])
def test_parse_with_masks_and_overwrite_never_deletes_user_folders(tiny_model_dir, tmp_path, filename, capsys):
    """An input named ``...jpg`` used to rmtree ``OUT/..``; ``data.jpg`` an unrelated user folder ``OUT/data``."""
    project = tmp_path / "project"
    out = project / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "mine.txt").write_text("user data")
    (project / "notes.txt").write_text("keep me")
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.open(EXAMPLES / "group.jpg").resize((64, 48)).save(inputs / filename, format="JPEG")
    before = _sentinel_tree(project)
    args = ["parse", str(inputs / filename), "--model", str(tiny_model_dir), "--out", str(out),
            "--format", "masks,json", "--prompt", "shirt", "--image-size", "64", "--threshold", "0", "--overwrite"]
    code = main(args)
    captured = capsys.readouterr()
    after = _sentinel_tree(project)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of the user's changed or vanished
    assert not [p for p in project.rglob("*") if p.name.endswith(".part")]
    if filename == "data.jpg":  # the user's folder blocks the masks: one clear failure line, nothing replaced
        assert code == 1 and "not made by spectrum" in captured.err
    else:  # the name is sanitised: masks land in OUT/image/, marked as the tool's own
        assert code == 0, captured.err
        assert (out / "image" / ".spectrum-output").is_file() and (out / "image.json").is_file()
        assert main(args) == 0  # and a rerun with --overwrite may replace the tool's own folder
        assert (out / "image" / ".spectrum-output").is_file()


def test_outputs_respect_the_umask(tiny_model_dir, tmp_path):
    old = os.umask(0o022)
    try:
        Image.open(EXAMPLES / "group.jpg").resize((64, 48)).save(tmp_path / "x.jpg")
        assert main(["parse", str(tmp_path / "x.jpg"), "--model", str(tiny_model_dir), "--out",
                     str(tmp_path / "out"), "--format", "png,json,masks", "--prompt", "shirt", "--image-size", "64",
                     "--threshold", "0"]) == 0
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert (out / "x.png").stat().st_mode & 0o777 == 0o644
    assert (out / "x.json").stat().st_mode & 0o777 == 0o644
    assert (out / "x").stat().st_mode & 0o777 == 0o755


def test_parse_never_reads_its_own_outputs_and_refuses_a_file_as_out(tiny_model_dir, tmp_path, capsys):
    Image.open(EXAMPLES / "group.jpg").resize((64, 48)).save(tmp_path / "x.jpg")
    args = ["parse", str(tmp_path), "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"),
            "--prompt", "shirt", "--image-size", "64"]
    assert main(args) == 0
    assert main(args) == 0  # the second run must not parse out/x.png and out/x_overlay.png as new inputs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".spectrum-manifest.json", "x.json", "x.png",
                                                                   "x_overlay.png"]
    capsys.readouterr()
    (tmp_path / "file").write_text("")
    assert main(["parse", str(tmp_path / "x.jpg"), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err


# --- Resume by manifest -----------------------------------------------------------------------------------

def test_resume_uses_a_manifest_not_file_names(tiny_model_dir, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    photo = Image.open(EXAMPLES / "group.jpg")
    photo.resize((64, 48)).save(a / "x.jpg")
    photo.resize((48, 64)).save(b / "x.jpg")
    out = tmp_path / "out"
    base = ["--model", str(tiny_model_dir), "--out", str(out), "--image-size", "64", "--threshold", "0",
            "--format", "png,json"]
    assert main(["parse", str(b / "x.jpg"), "--prompt", "hat", *base]) == 0
    # A run on a/x.jpg b/x.jpg used to skip a/x.jpg as done (b's outputs had its name): now b keeps "x" and
    # a gets a name of its own.
    assert main(["parse", str(a / "x.jpg"), str(b / "x.jpg"), "--prompt", "hat", *base]) == 0
    assert json.loads((out / "x.json").read_text())["height"] == 64  # still b's
    assert json.loads((out / "x__2.json").read_text())["height"] == 48  # a's
    capsys.readouterr()
    # New prompts: the old outputs are not passed off as done, and not silently replaced either.
    assert main(["parse", str(b / "x.jpg"), "--prompt", "scarf", *base]) == 1
    captured = capsys.readouterr()
    assert "other settings" in captured.err and "--overwrite" in captured.err
    assert json.loads((out / "x.json").read_text())["prompts"][0] == "hat"
    assert main(["parse", str(b / "x.jpg"), "--prompt", "scarf", *base, "--overwrite"]) == 0
    assert json.loads((out / "x.json").read_text())["prompts"][0] == "scarf"
    # A changed input file is not "done" either.
    photo.resize((40, 64)).save(b / "x.jpg")
    assert main(["parse", str(b / "x.jpg"), "--prompt", "scarf", *base]) == 1
    # Outputs with no record (made by hand or an older version) are kept, with a clear line.
    (tmp_path / "c").mkdir()
    photo.resize((64, 48)).save(tmp_path / "c" / "y.jpg")
    (out / "y.png").write_bytes(b"mine")
    capsys.readouterr()
    assert main(["parse", str(tmp_path / "c" / "y.jpg"), "--prompt", "scarf", *base]) == 1
    assert "no record of what made them" in capsys.readouterr().err and (out / "y.png").read_bytes() == b"mine"
    (out / ".spectrum-manifest.json").write_text("{broken")
    assert main(["parse", str(b / "x.jpg"), "--prompt", "scarf", *base]) == 2
    assert "damaged manifest" in capsys.readouterr().err


def test_stale_temporaries_of_a_killed_run_are_swept_and_nothing_else(tmp_path):
    """After kill -9 a run leaves `.spectrum-tmp.<pid>...part` files; the next run removes those of dead
    processes only: a live run's temporaries and the user's own files stay."""
    import subprocess
    import sys

    from spectrum_parsing.writers import TMP_TAG, atomic_write_text, sweep_stale_parts

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale_file = tmp_path / f"{TMP_TAG}{dead}.a.json.x1y2z3w4.part"
    stale_dir = tmp_path / f"{TMP_TAG}{dead}.a.abcd1234.part"
    live = tmp_path / f"{TMP_TAG}{os.getpid()}.b.json.q1w2e3r4.part"
    user = [tmp_path / ".notes.part", tmp_path / "spectrum-tmp.1.x.part", tmp_path / "a.json"]
    stale_file.write_text("half")
    stale_dir.mkdir()
    (stale_dir / "mask.png").write_bytes(b"x")
    live.write_text("writing")
    for f in user:
        f.write_text("mine")
    removed = sweep_stale_parts(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert live.exists() and all(f.exists() for f in user)
    atomic_write_text(tmp_path / "c.json", "{}")  # our own temporaries carry the tag and leave nothing behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_TAG) and p != live]


def test_unreadable_subfolders_are_skipped_with_a_line(tmp_path, monkeypatch, capsys):
    from spectrum_parsing.batch import expand_inputs

    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "ok" / "a.jpg").write_bytes(b"x")
    (tmp_path / "locked" / "b.jpg").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert expand_inputs([str(tmp_path)]) == [tmp_path / "ok" / "a.jpg"]
    assert "skipped unreadable folder" in capsys.readouterr().err


def test_250_byte_file_names_parse_into_every_format(tiny_model_dir, tmp_path, capsys):
    """A 250-byte input name (255 is the file-system limit) works: outputs and temporary names are shortened."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    name = "é" * 60 + "a" * 126 + ".jpg"  # 120 + 126 + 4 = 250 bytes in UTF-8
    assert len(name.encode("utf-8")) == 250
    Image.open(EXAMPLES / "group.jpg").resize((64, 48)).save(inputs / name, format="JPEG")
    out = tmp_path / "out"
    code = main(["parse", str(inputs / name), "--model", str(tiny_model_dir), "--out", str(out),
                 "--format", "png,json,overlay,masks", "--prompt", "shirt", "--image-size", "64", "--threshold", "0",
                 "--mode", "bottom-up"])
    assert code == 0, capsys.readouterr().err
    written = [p for p in out.rglob("*") if not p.name.startswith(".spectrum")]
    assert any(p.suffix == ".json" for p in written) and any(p.suffix == ".png" for p in written)
    assert all(len(p.name.encode("utf-8")) <= 255 for p in out.rglob("*"))
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_duplicate_long_names_keep_their_suffix_within_the_limit():
    # Found by fuzzing: a second 300-byte stem got "<120 bytes>__2", which output_paths then refused as unsafe.
    from spectrum_parsing.writers import MAX_NAME_BYTES, output_names, output_paths, safe_name

    names = output_names([Path("a") / ("é" * 200 + ".jpg"), Path("b") / ("é" * 200 + ".jpg")])
    first, second = names.values()
    assert second.endswith("__2") and len(second.encode()) <= MAX_NAME_BYTES and safe_name(second) == second
    assert first != second
    output_paths(Path("out"), second, ["png", "json", "masks"])


def test_a_run_killed_between_an_images_outputs_is_completed_by_the_next(tiny_model_dir, tmp_path, monkeypatch,
                                                                          capsys):
    """The manifest records an image's intent before its files are written: a crash after the PNG and before
    the JSON leaves outputs a rerun knows as its own, and completes instead of refusing."""
    import spectrum_parsing.batch as batch

    Image.open(EXAMPLES / "selfie.jpg").convert("RGB").resize((60, 80)).save(tmp_path / "x.jpg")
    args = ["parse", str(tmp_path / "x.jpg"), "--model", str(tiny_model_dir), "--image-size", "64",
            "--out", str(tmp_path / "out"), "--format", "png,json"]
    real = batch.write_outputs

    def crash_after_png(result, image, out, path, formats, name=None):
        real(result, image, out, path, [f for f in formats if f == "png"], name=name)
        raise KeyboardInterrupt  # the process dies here (as a kill -9 would, with nothing cleaned up)

    monkeypatch.setattr(batch, "write_outputs", crash_after_png)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    assert (tmp_path / "out" / "x.png").is_file() and not (tmp_path / "out" / "x.json").exists()
    monkeypatch.setattr(batch, "write_outputs", real)
    capsys.readouterr()
    assert main(args) == 0
    assert (tmp_path / "out" / "x.json").is_file() and "refused" not in capsys.readouterr().out


def test_the_manifest_is_validated_and_merged_under_a_lock(tmp_path, tiny_model_dir, capsys):
    from spectrum_parsing.writers import MANIFEST, Manifest

    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"y")
    one, two = Manifest.load(tmp_path / "out"), Manifest.load(tmp_path / "out")  # two runs, one folder
    one.record("a", tmp_path / "a.jpg", {"prompts": None})
    two.record("b", tmp_path / "b.jpg", {"prompts": None})
    one.save()
    two.save()  # the later save keeps the other run's entry
    assert set(Manifest.load(tmp_path / "out").entries) == {"a", "b"}
    (tmp_path / "out" / MANIFEST).write_text('{"version": 1, "entries": {"a": 3}}')
    with pytest.raises(ValueError, match="damaged manifest .*not a record"):
        Manifest.load(tmp_path / "out")
    code = main(["parse", str(tmp_path / "a.jpg"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_local_run_sweeps_a_killed_runs_temporaries(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".spectrum-tmp.999999999.x.png.abc.part"  # a pid no process has
    stale.write_bytes(b"half")
    mine = out / ".my-notes.part"
    mine.write_text("the user's")
    Image.open(EXAMPLES / "selfie.jpg").convert("RGB").resize((60, 80)).save(tmp_path / "x.jpg")
    assert main(["parse", str(tmp_path / "x.jpg"), "--model", str(tiny_model_dir), "--image-size", "64",
                 "--out", str(out), "--format", "json"]) == 0
    assert not stale.exists() and mine.read_text() == "the user's"
    assert "removed .spectrum-tmp.999999999" in capsys.readouterr().err


def test_batches_are_bounded_by_decoded_pixels_not_only_by_count(tiny_model_dir, tmp_path, monkeypatch):
    import spectrum_parsing.cli as cli

    for k in range(3):
        Image.open(EXAMPLES / "selfie.jpg").convert("RGB").resize((60, 80)).save(tmp_path / f"x{k}.jpg")
    groups = []
    real = cli.parse_rows

    def spy(pipe, rows, call, out, **kw):
        groups.append(len(rows))
        return real(pipe, rows, call, out, **kw)

    monkeypatch.setattr(cli, "parse_rows", spy)
    args = ["parse", *(str(tmp_path / f"x{k}.jpg") for k in range(3)), "--model", str(tiny_model_dir),
            "--image-size", "64", "--format", "json", "--batch-size", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0 and groups == [3]
    groups.clear()
    monkeypatch.setattr(cli, "PIXELS_IN_FLIGHT", 2 * 60 * 80)  # two of these photos' pixels
    assert main([*args, "--out", str(tmp_path / "b")]) == 0 and groups == [2, 1]
