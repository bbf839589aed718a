"""The batch job shared by the local and Ray engines: failure accounting per image, summary lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from spectrum_parsing.batch import Row, decode_row, parse_rows, summary_line
from spectrum_parsing.results import ParsingResult


def _result(image) -> ParsingResult:
    h, w = np.asarray(image).shape[:2]
    return ParsingResult([], np.zeros((h, w), np.int32), ["hat"], ["hat", "person"], h, w)


def test_rows_fail_one_by_one_and_a_failing_model_call_fails_its_group(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (16, 16)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    rows = [decode_row(good, "good", ["png", "json"], None), decode_row(broken, "broken", ["png"], None)]
    assert not rows[0].error and "broken.png" in rows[1].error and "\n" not in rows[1].error
    out = tmp_path / "out"
    out.mkdir()
    done = parse_rows(lambda images, **kw: [_result(i) for i in images], rows, {}, out)
    assert [bool(r.error) for r in done] == [False, True]
    assert (out / "good.png").is_file() and (out / "good.json").is_file() and not (out / "broken.png").exists()

    def failing(images, **kw):
        raise ValueError("model says no")

    again = parse_rows(failing, [decode_row(good, "g2", ["png"], None)], {}, out)
    assert again[0].error == f"{good}: model says no" and not (out / "g2.png").exists()
    blocked = Row(good, "blocked", ["masks"], Image.new("RGB", (16, 16)))
    (out / "blocked").mkdir()  # a user's folder where the masks would go: that row fails, nothing is replaced
    assert "blocked" in parse_rows(lambda images, **kw: [_result(i) for i in images], [blocked], {}, out)[0].error


def test_summary_lines():
    out = Path("o")
    assert summary_line(out, 3, 1, 2, 1) == ("parsed 2 of 3 image(s) into o; 1 failed; 2 already done; "
                                            "1 refused (outputs of other inputs or settings)")
    assert summary_line(out, 0, 0, 4).startswith("nothing to do: the outputs of all 4 image(s)")
