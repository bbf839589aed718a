"""Names from outside reach the terminal escaped: no forged lines, no escape sequences."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from spectrum_parsing.terminal import shown


def test_shown_escapes_control_bidi_and_backslashes():
    assert shown("plain name.jpg") == "plain name.jpg"
    assert shown("a\nfailed: b.jpg") == "a\\nfailed: b.jpg"
    assert shown("x\x1b[31mred") == "x\\x1b[31mred"
    assert shown("evil\u202egpj.exe") == "evil\\u202egpj.exe"
    assert shown("back\\nslash") == "back\\\\nslash"  # a literal backslash-n cannot pass for an escape
    assert shown("naïve 写真.png") == "naïve 写真.png"  # printable non-ASCII stays


def test_a_file_named_with_a_newline_cannot_forge_summary_lines(tmp_path, tiny_model_dir, capsys):
    from spectrum_parsing.cli import main

    bad = tmp_path / "in" / "x\nfailed: forged.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    Image.new("RGB", (40, 40)).save(tmp_path / "in" / "ok\x1b[2J.png")
    code = main(["parse", str(tmp_path / "in"), "--model", str(tiny_model_dir), "--image-size", "64",
                 "--out", str(tmp_path / "out"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    lines = (out + err).splitlines()
    assert not any(line.startswith("failed: forged") for line in lines)
    assert "\x1b" not in out + err
    assert any("x\\nfailed: forged.jpg" in line for line in lines)
    assert Path(tmp_path / "out").is_dir()
