"""Dataset presets, label maps (merge / rename / ids), batching and the ``spectrum parse`` output formats."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spectrum_parsing.cli import main, slugify
from spectrum_parsing.data.formats import (
    ATR_LABELS,
    CCP_LABELS,
    CIHP_LABELS,
    LIP_LABELS,
    PASCAL_PERSON_PART_LABELS,
    voc_colormap,
)
from spectrum_parsing.pipeline import SpectrumPipeline
from spectrum_parsing.presets import (
    PRESETS,
    Preset,
    apply_label_map,
    get_preset,
    label_map_prompts,
    load_label_map,
    validate_label_map,
)
from spectrum_parsing.rle import decode_rle
from spectrum_parsing.vocab import categories as vocabulary

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SIZE = (96, 72)  # W, H of the test images


@pytest.fixture(scope="module")
def pipe(tiny_model_dir) -> SpectrumPipeline:
    return SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.open(EXAMPLES / "group.jpg").convert("RGB").resize(SIZE)


# ------------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("name, labels", [
    ("lip", LIP_LABELS), ("atr", ATR_LABELS), ("cihp", CIHP_LABELS),
    ("pascal-person-part", PASCAL_PERSON_PART_LABELS), ("ccp", CCP_LABELS),
])
def test_presets_follow_the_dataset_label_tuples(name, labels):
    preset = get_preset(name)
    assert preset is PRESETS[name] and preset.name == name
    assert preset.classes == list(labels)  # index = dataset id
    assert preset.label_ids == list(range(1, len(labels)))
    assert len(preset.prompts) == len(labels) - 1
    assert all(p in vocabulary.BY_NAME for p in preset.prompts)  # canonical prompts
    assert np.array_equal(preset.palette, voc_colormap(len(labels)))


def test_preset_prompts_and_lookup():
    lip, cihp = get_preset("LIP"), get_preset("cihp")
    assert lip.prompts[LIP_LABELS.index("upper-clothes") - 1] == "upper clothes"
    assert lip.prompts[9] == "jumpsuit" and cihp.prompts[9] == "torso"  # id 10 differs between LIP and CIHP
    assert get_preset("pascal_person_part") is get_preset("pascal") is PRESETS["pascal-person-part"]
    assert get_preset(lip) is lip
    with pytest.raises(ValueError, match="unknown preset 'viton'.*lip, atr, cihp, pascal-person-part, ccp"):
        get_preset("viton")
    with pytest.raises(ValueError, match="one prompt per class"):
        Preset("x", ["background", "a", "b"], ["a"], voc_colormap(3))
    with pytest.raises(ValueError, match="palette"):
        Preset("x", ["background", "a"], ["a"], np.zeros((5, 3)))


# ------------------------------------------------------------------------------------------------ label maps
def test_label_map_merge_rename_and_ids():
    labels = ["shirt", "t-shirt", "pants", "hat", "hair"]
    scheme = apply_label_map(labels, None, {"merge": {"t-shirt": "upper clothes", "shirt": "upper clothes"},
                                            "rename": {"pants": "trousers"}})
    assert list(zip(scheme.names, scheme.ids)) == [("upper clothes", 1), ("trousers", 2), ("hat", 3), ("hair", 4)]
    assert scheme.source_ids == [1, 1, 2, 3, 4]
    assert scheme.source_names == ["upper clothes", "upper clothes", "trousers", "hat", "hair"]
    # a merge into an existing label joins it; a rename keeps the id; renames are simultaneous (a swap works)
    scheme = apply_label_map(labels, None, {"merge": {"t-shirt": "SHIRT"}, "rename": {"hat": "hair", "hair": "hat"}})
    assert scheme.source_ids == [1, 1, 2, 3, 4] and scheme.source_names == ["shirt", "shirt", "pants", "hair", "hat"]
    # with a preset's ids: ids kept; a new merged label takes the smallest id of its sources; names match by
    # canonical category ("upper clothes" is LIP's "upper-clothes")
    lip = get_preset("lip")
    scheme = apply_label_map(lip.classes[1:], lip.label_ids, {"merge": {"left arm": "arms", "right-arm": "arms",
                                                                          "coat": "upper clothes"}}, keep_ids=True)
    ids = dict(zip(scheme.names, scheme.ids))
    assert ids["arms"] == 14 and ids["upper-clothes"] == 5 and "coat" not in ids and ids["right-shoe"] == 19
    assert scheme.source_ids[LIP_LABELS.index("coat") - 1] == 5
    # "labels": fixed ids, unlisted labels dropped, listed spelling kept
    lm = {"labels": {"7": "upper clothes", "3": "trousers"}, "merge": {"t-shirt": "upper clothes"},
          "rename": {"pants": "trousers"}}
    scheme = apply_label_map(["t-shirt", "upper-clothes", "pants", "hair"], None, lm)
    assert list(zip(scheme.names, scheme.ids)) == [("trousers", 3), ("upper clothes", 7)]
    assert scheme.source_ids == [7, 7, 3, 0] and scheme.source_names[3] is None
    assert label_map_prompts(lm) == ["pants", "t-shirt", "upper clothes"]
    assert label_map_prompts({"merge": {"a": "b"}}) is None


@pytest.mark.parametrize("data, message", [
    ([1, 2], "must be a JSON object"),
    ({"merge": {"a": "b"}, "colors": {}}, r"unknown key\(s\) \['colors'\]"),
    ({"merge": ["a", "b"]}, "'merge' must be an object"),
    ({"merge": {"a": ""}}, "non-empty strings"),
    ({"merge": {"a": "b", "b": "c"}}, "is itself merged"),
    ({"merge": {"a": "c"}, "rename": {"a": "d"}}, "both merged and renamed"),
    ({"rename": {"a": "x", "b": "X"}}, "renamed to the same name"),
    ({"labels": {"one": "a"}}, "not an integer id"),
    ({"labels": {"0": "a"}}, r"out of range 1\.\.255 \(0 is the background\)"),
    ({"labels": {"300": "a"}}, "out of range"),
    ({"labels": {"1": "a", "2": "A"}}, "twice"),
    ({"labels": {}}, "non-empty object"),
])
def test_bad_label_map_files_give_clear_errors(tmp_path, data, message):
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as err:
        load_label_map(path)
    assert str(path) in str(err.value)


def test_label_map_file_errors_and_unmatched_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="label map"):
        load_label_map(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{merge: ")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_label_map(tmp_path / "bad.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"merge": {"tee": "top"}, "labels": {"2": "top"}, "description": "mine"}))
    assert load_label_map(good) == validate_label_map(load_label_map(good))  # idempotent
    with pytest.raises(ValueError, match=r"merge key 'dress' matches none of the labels \(shirt, hat\)"):
        apply_label_map(["shirt", "hat"], None, {"merge": {"dress": "top"}})
    with pytest.raises(ValueError, match="rename key"):
        apply_label_map(["shirt", "hat"], None, {"rename": {"coat": "top"}})
    with pytest.raises(ValueError, match="end up named 'hat'; use 'merge'"):
        apply_label_map(["shirt", "hat"], None, {"rename": {"shirt": "hat"}})
    with pytest.raises(ValueError, match="'labels' id 1 'coat' matches none"):
        apply_label_map(["shirt", "hat"], None, {"labels": {"1": "coat"}})


# ------------------------------------------------------------------------------------------------ pipeline
def test_pipeline_with_preset_writes_dataset_ids_and_palette(pipe, image, tmp_path):
    lip = get_preset("lip")
    result = pipe(image, preset="lip", score_threshold=0.0)
    assert result.labels == list(LIP_LABELS[1:]) and result.ids == list(range(1, 20))
    assert result.prompts == [*lip.prompts, "person"]  # exactly the dataset's classes: no EBP additions
    assert result.label_map.dtype == np.int32 and result.label_map.shape == (SIZE[1], SIZE[0])
    assert set(np.unique(result.label_map)) <= set(range(20))
    assert any(p.parts for p in result.persons)
    assert {part.label for p in result.persons for part in p.parts} <= set(LIP_LABELS[1:])
    result.label_map_image().save(tmp_path / "lip.png")
    png = Image.open(tmp_path / "lip.png")
    assert png.mode == "P" and np.array_equal(np.array(png), result.label_map)
    assert np.array_equal(np.array(png.getpalette()[: 3 * 20]).reshape(20, 3), lip.palette)
    data = result.to_dict("a.jpg")
    assert data["preset"] == "lip" and data["labels"]["5"] == "upper-clothes"
    for person in data["persons"]:
        for part in person["parts"]:
            assert LIP_LABELS[part["label_id"]] == part["label"]
    result.overlay(image)  # renders
    with pytest.raises(ValueError, match="prompts or a preset, not both"):
        pipe(image, prompts=["dress"], preset="lip")


def test_pipeline_label_map_remaps_ids_and_parts(pipe, image):
    prompts = ["shirt", "t-shirt", "pants"]
    raw = pipe(image, prompts=prompts, ebp=False, score_threshold=0.0)
    lm = {"merge": {"t-shirt": "upper clothes", "shirt": "upper clothes"}, "rename": {"pants": "trousers"}}
    mapped = pipe(image, prompts=prompts, ebp=False, score_threshold=0.0, label_map=lm)
    assert mapped.labels == ["upper clothes", "trousers"] and mapped.ids == [1, 2]
    assert np.array_equal(mapped.label_map, np.array([0, 1, 1, 2])[raw.label_map])
    rename = {"shirt": "upper clothes", "t-shirt": "upper clothes", "pants": "trousers"}
    raw_parts = [(pr.id, rename[p.label], p.score) for pr in raw.persons for p in pr.parts]
    assert raw_parts and raw_parts == [(pr.id, p.label, p.score) for pr in mapped.persons for p in pr.parts]
    data = mapped.to_dict()
    assert data["labels"] == {"1": "upper clothes", "2": "trousers"}
    assert {part["label_id"] for p in data["persons"] for part in p["parts"]} <= {1, 2}
    # "labels": fixed ids, the prompts implied by the map, other labels (the EBP additions) dropped
    fixed = pipe(image, score_threshold=0.0, label_map={"labels": {"3": "upper clothes", "7": "trousers"},
                                                  "merge": {"shirt": "upper clothes"}, "rename": {"pants": "trousers"}})
    assert fixed.prompts[:3] == ["shirt", "upper clothes", "pants"] and "hair" in fixed.prompts
    assert fixed.labels == ["upper clothes", "trousers"] and fixed.ids == [3, 7]
    assert set(np.unique(fixed.label_map)) <= {0, 3, 7}
    assert all(part.label in fixed.labels for p in fixed.persons for part in p.parts)


def test_pipeline_batches_give_the_same_results(pipe, image):
    other = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    small = image.resize((48, 40))
    one = [pipe(im, prompts=["shirt"]) for im in (image, other, small)]
    batched = pipe([image, other, small], prompts=["shirt"], batch_size=3)
    for a, b in zip(one, batched):
        assert a.label_map.shape == b.label_map.shape
        assert (a.label_map == b.label_map).mean() > 0.99
        assert len(a.persons) == len(b.persons)
    with pytest.raises(ValueError, match="batch_size"):
        pipe(image, batch_size=0)


# ------------------------------------------------------------------------------------------------ CLI
def test_parse_command_formats_masks_and_coco(tiny_model_dir, image, tmp_path, capsys):
    from pycocotools.coco import COCO

    inputs = tmp_path / "in"
    inputs.mkdir()
    image.save(inputs / "a.jpg")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(inputs / "b.png")
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"merge": {"left arm": "arms", "right arm": "arms"},
                                     "rename": {"upper-clothes": "top"}}))
    out = tmp_path / "out"
    code = main(["parse", str(inputs), "--model", str(tiny_model_dir), "--out", str(out), "--preset", "lip",
                 "--label-map", str(label_map), "--format", "png,json,masks", "--batch-size", "2",
                 "--image-size", "96", "--threshold", "0"])
    assert code == 0, capsys.readouterr().err
    lip = get_preset("lip")
    assert not list(out.glob("*_overlay.png"))  # not asked for
    for stem in ("a", "b"):
        png = Image.open(out / f"{stem}.png")
        ids = np.array(png)
        assert png.mode == "P" and ids.shape == (SIZE[1], SIZE[0])
        assert set(np.unique(ids)) <= set(range(20)) - {15}  # right-arm (15) merged into arms (14)
        assert np.array_equal(np.array(png.getpalette()[: 3 * 20]).reshape(20, 3), lip.palette)
        data = json.loads((out / f"{stem}.json").read_text())
        assert data["labels"]["14"] == "arms" and data["labels"]["5"] == "top" and "15" not in data["labels"]
        assert data["persons"] and any(p["parts"] for p in data["persons"])
        mask_dir = out / stem
        for person in data["persons"]:
            body = np.array(Image.open(mask_dir / f"person{person['id']}.png"))
            assert np.array_equal(body > 0, decode_rle(person["segmentation"]))
            for part in person["parts"]:
                mask_png = Image.open(mask_dir / f"person{person['id']}_{slugify(part['label'])}.png")
                assert mask_png.mode == "L"
                mask = np.array(mask_png)
                assert set(np.unique(mask)) <= {0, 255}
                if sum(q["label"] == part["label"] for q in person["parts"]) == 1:
                    assert np.array_equal(mask == 255, decode_rle(part["segmentation"]))
        # the COCO block loads in pycocotools and its masks are the JSON masks
        coco_path = tmp_path / f"{stem}_coco.json"
        coco_path.write_text(json.dumps(data["coco"]))
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(coco_path))
        flat = [(q, q["segmentation"]) for p in data["persons"] for q in (p, *p["parts"])]  # person, its parts
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
        assert len(anns) == len(flat) == len(data["coco"]["annotations"])
        categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert categories[20] == "person" and categories[14] == "arms"
        for ann, (item, rle) in zip(anns, flat):
            assert np.array_equal(coco.annToMask(ann).astype(bool), decode_rle(rle))
            x0, y0, x1, y1 = item["box"]
            assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0] and ann["area"] == decode_rle(rle).sum()
            assert ann["score"] == item["score"] and categories[ann["category_id"]] == item.get("label", "person")
            assert ann["person_id"] in {p["id"] for p in data["persons"]}


def test_parse_command_option_errors(tiny_model_dir, tmp_path, capsys):
    base = ["parse", str(tmp_path), "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")]
    (tmp_path / "map.json").write_text(json.dumps({"labels": {"0": "x"}}))
    for extra, message in [
        (["--format", "png,svg"], "--format 'png,svg'"),
        (["--preset", "lip", "--prompt", "dress"], "--prompt and --preset cannot be combined"),
        (["--preset", "mhp"], "unknown preset 'mhp'"),
        (["--label-map", str(tmp_path / "map.json")], "0 is the background"),
        (["--label-map", str(tmp_path / "none.json")], "not found"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ]:
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err


def test_slugify():
    assert slugify("Upper Clothes") == "upper-clothes" and slugify("t-shirt") == "t-shirt"
    assert slugify("left_shoe (L)") == "left-shoe-l" and slugify("!!") == "label"
