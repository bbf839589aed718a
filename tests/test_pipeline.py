"""SpectrumPipeline, the ``spectrum parse`` command and the output formats, read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spectrum_parsing.batch import expand_inputs
from spectrum_parsing.cli import main
from spectrum_parsing.pipeline import DEFAULT_MODEL_DIR, SpectrumPipeline
from spectrum_parsing.rendering import label_map_image, palette
from spectrum_parsing.rle import decode_rle, encode_rle

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_rle_round_trip_and_palette_png(tmp_path):
    rng = np.random.default_rng(0)
    mask = rng.random((37, 51)) > 0.6
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [37, 51]
    assert np.array_equal(decode_rle(json.loads(json.dumps(rle))), mask)
    labels = rng.integers(0, 5, (20, 30))
    label_map_image(labels, palette(5)).save(tmp_path / "l.png")
    back = Image.open(tmp_path / "l.png")
    assert back.mode == "P" and np.array_equal(np.array(back), labels)
    assert np.array_equal(np.array(back.getpalette()[:15]).reshape(5, 3), palette(5))


def test_pipeline_accepts_paths_pil_numpy_and_lists(tiny_model_dir):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=128)
    image = Image.open(EXAMPLES / "group.jpg").resize((160, 120))
    array = np.asarray(image)
    a = pipe(image, prompts=["shirt"])
    b = pipe(array, prompts=["shirt"])
    assert a.label_map.shape == (120, 160) and a.height == 120 and a.width == 160
    assert np.array_equal(a.label_map, b.label_map)
    results = pipe([image, array], prompts=["shirt"], ebp=False)
    assert isinstance(results, list) and len(results) == 2 and results[0].labels == ["shirt"]
    assert a.labels == ["shirt", "hair", "face"]  # the model's EBP prompts were added
    assert pipe(image).labels[:2] == ["shirt", "hat"]  # the model's default prompts
    assert a.prompts[-1] == "person"
    assert a.label_map.max() <= len(a.labels)
    with pytest.raises(ValueError, match="too small"):
        pipe(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        pipe(np.zeros((16, 16, 2), dtype=np.uint8))
    with pytest.raises(TypeError):
        pipe(42)
    with pytest.raises(ValueError, match="empty"):
        pipe(image, prompts=["  "])


def test_label_map_only_covers_detected_persons(tiny_model_dir):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=128)
    result = pipe(Image.open(EXAMPLES / "group.jpg").resize((160, 120)), prompts=["shirt"], score_threshold=0.0)
    worn = np.zeros(result.label_map.shape, dtype=bool)
    for person in result.persons:
        worn |= person.mask.numpy()
        for part in person.parts:
            x0, y0, x1, y1 = part.box
            assert part.mask[y0:y1, x0:x1].sum() == part.mask.sum()  # box encloses the mask
    assert not result.label_map[~worn].any()


def test_parse_command_writes_readable_outputs(tiny_model_dir, tmp_path, capsys):
    images = tmp_path / "in" / "nested"
    images.mkdir(parents=True)
    Image.open(EXAMPLES / "group.jpg").resize((96, 72)).save(images / "a.jpg")
    Image.open(EXAMPLES / "group.jpg").resize((64, 80)).save(images / "b.png")
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["parse", str(tmp_path / "in"), "--model", str(tiny_model_dir), "--out", str(out),
                 "--prompt", "shirt", "--prompt", "hat", "--image-size", "96", "--threshold", "0"])
    assert code == 1  # one input failed, the others were written
    captured = capsys.readouterr()
    assert "parsed 2 of 3" in captured.out and "broken.jpg" in captured.err
    for stem, size in (("a", (72, 96)), ("b", (80, 64))):
        label_png = Image.open(out / f"{stem}.png")
        assert label_png.mode == "P" and label_png.size == size[::-1]
        overlay = Image.open(out / f"{stem}_overlay.png")
        assert overlay.width >= size[1] and overlay.height > size[0]  # legend below the image, never cut
        data = json.loads((out / f"{stem}.json").read_text())
        assert data["height"] == size[0] and data["prompts"][:2] == ["shirt", "hat"]
        ids = np.array(label_png)
        assert set(np.unique(ids)) <= {0, *map(int, data["labels"])}
        for person in data["persons"]:
            mask = decode_rle(person["segmentation"])
            assert mask.shape == size and mask.sum() > 0
            for part in person["parts"]:
                assert part["label"] in data["prompts"] and decode_rle(part["segmentation"]).shape == size


def test_expand_inputs(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/x.jpg", "d/e/y.PNG", "d/notes.txt", "z.jpg"):
        (tmp_path / name).write_bytes(b"")
    found = expand_inputs([str(tmp_path / "d"), str(tmp_path / "*.jpg"), str(tmp_path / "z.jpg")])
    assert [p.name for p in found] == ["y.PNG", "x.jpg", "z.jpg"]  # sorted by path: d/e/y.PNG < d/x.jpg


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), reason="embedded model not built yet")
def test_embedded_default_model_parses_the_group_photo():
    """The shipped model loads offline and finds people with face and hair parts in the bundled group photo.

    The bounds are what this small CPU-trained model really does (see its model card): several person masks,
    a handful of parts; multi-person grouping is its weak point.
    """
    pipe = SpectrumPipeline.from_pretrained()
    result = pipe(EXAMPLES / "group.jpg")
    assert len(result.persons) >= 3
    assert sum(len(p.parts) for p in result.persons) >= 4
    labels = {part.label for p in result.persons for part in p.parts}
    assert {"face", "hair"} <= labels


def test_parsing_result_new_fields_default_and_json_has_coco(tiny_model_dir):
    """Results built the old way still work; the JSON gains label ids and a COCO block without losing keys."""
    from spectrum_parsing.pipeline import ParsingResult

    old = ParsingResult([], np.zeros((4, 5), dtype=np.int32), ["shirt", "hat"], ["shirt", "hat", "person"], 4, 5)
    assert old.ids == [1, 2] and old.palette is None and old.preset is None
    assert old.to_dict()["labels"] == {"1": "shirt", "2": "hat"} and old.label_map_image().mode == "P"
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96)
    result = pipe(Image.open(EXAMPLES / "group.jpg").resize((96, 72)), prompts=["shirt"], score_threshold=0.0)
    data = result.to_dict("g.jpg")
    assert {"image", "height", "width", "prompts", "labels", "persons"} <= set(data)
    assert data["coco"]["images"] == [{"id": 1, "file_name": "g.jpg", "height": 72, "width": 96}]
    n = sum(1 + len(p["parts"]) for p in data["persons"])
    assert len(data["coco"]["annotations"]) == n > 0
    assert [c["name"] for c in data["coco"]["categories"]] == [*result.labels, "person"]


def test_pipeline_prompts_thresholds_and_non_latin_prompts(tiny_model_dir):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    image = Image.open(EXAMPLES / "group.jpg").resize((64, 48))
    result = pipe(image, prompts=["裙子", "shirt", "SHIRT"], ebp=False)
    assert result.labels == ["裙子", "shirt"] and result.label_map.shape == (48, 64)
    with pytest.raises(ValueError, match="at least one prompt"):
        pipe(image, prompts=[])
    with pytest.raises(ValueError, match="threshold must be a number in"):
        pipe(image, prompts=["hat"], score_threshold=1.5)


@pytest.mark.parametrize("mode", ["bottom-up", "top-down"])
def test_large_images_are_parsed_at_a_working_size_and_scaled_back(tiny_model_dir, mode):
    image = Image.open(EXAMPLES / "group.jpg").resize((240, 180))
    full = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, mode=mode)
    small = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, work_pixels=60 * 80, mode=mode)
    a = full(image, prompts=["shirt"], score_threshold=0.0)
    b = small(image, prompts=["shirt"], score_threshold=0.0)
    assert b.label_map.shape == a.label_map.shape == (180, 240) and (b.height, b.width) == (180, 240)
    for person in b.persons:
        assert person.mask.shape == (180, 240)
        x0, y0, x1, y1 = person.box
        assert person.mask[y0:y1, x0:x1].sum() == person.mask.sum() > 0
        if person.keypoints is not None:  # keypoints scaled back with the masks
            assert person.keypoints[:, 0].max() <= 240 * 1.2 and person.keypoints[:, 1].max() <= 180 * 1.2
        for part in person.parts:  # only the box is stored; the label map was scaled with the same indices
            x0, y0, x1, y1 = part.box
            assert part.crop.shape == (y1 - y0, x1 - x0) and part.mask.shape == (180, 240)
            assert (b.label_map[part.mask.numpy()] == b.ids[b.labels.index(part.label)]).all()
    labelled = np.zeros((180, 240), bool)  # label map <=> parts, pixel for pixel, after scaling (both modes)
    for person in b.persons:
        for part in person.parts:
            labelled |= part.mask.numpy()
    assert np.array_equal(labelled, b.label_map > 0)
    if mode == "bottom-up":  # the working-size parse agrees with the full-size one (same model input)
        assert (a.label_map == b.label_map).mean() > 0.9
    else:  # top-down: the detector sees an 80x60 image (4 of the 5 people found there), so crops differ
        assert len(a.persons) == 5 and 3 <= len(b.persons) <= 5
    with pytest.raises(ValueError, match="work_pixels"):
        SpectrumPipeline.from_pretrained(tiny_model_dir, work_pixels=10)


def test_thin_images_and_tiny_model_inputs_are_padded_not_crashing(tiny_model_dir):
    # Found by fuzzing: an 8x2000 strip (or a 32-px model input) left 1x1 maps at stride 32, and a norm layer
    # raised. The model now pads its input to at least 64 px per side; outputs keep the image's size.
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir)
    strip = np.random.default_rng(0).integers(0, 256, (8, 2000, 3), dtype=np.uint8)
    assert pipe(strip, prompts=["hat"], score_threshold=0.0).label_map.shape == (8, 2000)
    small = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=32)
    assert small(strip[:, :40], prompts=["hat"]).label_map.shape == (8, 40)


def test_square_inputs_set_after_construction_change_the_result_as_the_constructor_would(tiny_model_dir):
    # benchmarks/bench_inputs.py toggles the attribute on one pipeline; it once changed nothing (the processor had
    # copied the flag), so that benchmark compared the square rule with itself.
    wide = np.asarray(Image.open(EXAMPLES / "group.jpg").convert("RGB").resize((240, 96)))
    def scores(result) -> list[float]:
        return [part.score for person in result.persons for part in person.parts]

    fresh = {square: SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96, mode="bottom-up",
                                                      square_inputs=square)(wide, score_threshold=0.0)
             for square in (True, False)}
    assert scores(fresh[True]) != scores(fresh[False])  # the two rules differ on a wide photo
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96, mode="bottom-up")
    for square in (False, True):
        pipe.square_inputs = square
        assert pipe.square_inputs is square and pipe.processor.square is square
        again = pipe(wide, score_threshold=0.0)
        assert scores(again) == scores(fresh[square]) and np.array_equal(again.label_map, fresh[square].label_map)


def test_top_level_exports_the_pipeline():
    """``from spectrum_parsing import SpectrumPipeline`` works, as the README's API section shows."""
    import spectrum_parsing
    from spectrum_parsing import ParsingResult, SpectrumPipeline
    from spectrum_parsing.pipeline import ParsingResult as Result
    from spectrum_parsing.pipeline import SpectrumPipeline as Pipeline

    assert SpectrumPipeline is Pipeline and ParsingResult is Result
    assert {"SpectrumPipeline", "ParsingResult"} <= set(spectrum_parsing.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        spectrum_parsing.Nope  # noqa: B018


# --- Top-down parsing: people kept apart, one truth per result -------------------------------------------

@pytest.fixture(scope="module")
def default_top_down() -> SpectrumPipeline:
    return SpectrumPipeline.from_pretrained()  # the embedded model, top-down with MoveNet + BlazePose


def _small(name: str) -> np.ndarray:
    """A bundled photo at 512x384 (keeps the default suite fast; people are still 150-350 px tall)."""
    return np.asarray(Image.open(EXAMPLES / name).convert("RGB").resize((512, 384), Image.BILINEAR))


def test_the_selfies_forearm_raised_behind_the_head_is_an_arm_not_face(default_top_down, monkeypatch):
    """The bundled selfie: the man's left forearm, raised behind his head with the wrist hidden, touches his face;
    the pose alone named it face from elbow to hand (body_naming._arms_the_parser_saw)."""
    from spectrum_parsing import body_naming

    photo = _small("selfie.jpg")

    def labels_at(points: list[tuple[int, int]]) -> list[str]:
        result = default_top_down(photo)
        names = dict(zip(result.ids, result.labels))
        return [names.get(int(result.label_map[y, x]), "background") for x, y in points]

    forearm, elbow, face = (395, 200), (435, 306), (260, 150)
    assert labels_at([forearm, elbow, face]) == ["left arm", "left arm", "face"]
    monkeypatch.setattr(body_naming, "PARSER_ARM_SHARE", 2.0)  # the rule off: the forearm is the face's
    assert labels_at([forearm]) == ["face"]


def test_top_down_finds_each_person_of_the_group_photo_once(default_top_down):
    result = default_top_down(_small("group.jpg"))
    assert default_top_down.mode == "top-down" and len(result.persons) == 5
    masks = torch.stack([p.mask for p in result.persons])
    assert int(masks.sum(0).max()) == 1  # no pixel belongs to two people
    assert all(p.keypoints is not None and p.keypoints.shape == (17, 3) for p in result.persons)
    assert "keypoints" in result.to_dict()["persons"][0]


@pytest.fixture(scope="module")
def default_bottom_up() -> SpectrumPipeline:
    return SpectrumPipeline.from_pretrained(mode="bottom-up")


@pytest.mark.parametrize("mode", ["top-down", "bottom-up"])
def test_label_map_and_json_agree_pixel_for_pixel(request, mode):
    from pycocotools import mask as mask_utils

    pipe = request.getfixturevalue("default_top_down" if mode == "top-down" else "default_bottom_up")
    for name in ("group.jpg", "two-dancers.jpg", "selfie.jpg"):
        result = pipe(_small(name), prompts=["heels", "scarf", "saree"])
        masks = [p.mask for p in result.persons]
        if masks:
            assert int(torch.stack(masks).sum(0).max()) == 1  # no pixel belongs to two people
        data = result.to_dict(name)
        ids = {v: int(k) for k, v in data["labels"].items()}
        rendered = np.zeros_like(result.label_map)
        for person in data["persons"]:
            for part in person["parts"]:
                mask = mask_utils.decode({"size": part["segmentation"]["size"],
                                          "counts": part["segmentation"]["counts"].encode()}).astype(bool)
                assert mask.any(), f"{name}: a part with no pixel ({part['label']})"
                assert (rendered[mask] == 0).all()  # parts never overlap
                rendered[mask] = ids[part["label"]]
        assert np.array_equal(rendered, result.label_map), name


def _specks(result, share: float = 0.1) -> int:
    """Pieces of a person's garment (or hair) part smaller than ``share`` of that part's largest piece."""
    from scipy import ndimage

    body = {"face", "left arm", "right arm", "left leg", "right leg"}
    count = 0
    for person in result.persons:
        for part in person.parts:
            if part.label in body:
                continue
            pieces, n = ndimage.label(part.mask.numpy())
            sizes = np.bincount(pieces.ravel())[1:]
            count += int((sizes < share * sizes.max()).sum()) if n > 1 else 0
    return count


@pytest.mark.parametrize("mode", ["top-down", "bottom-up"])
def test_parts_carry_no_specks_in_either_mode(request, mode):
    """Both modes drop the pieces of a garment (or hair) far smaller than its largest piece on the person
    (``TopDownConfig.speck_share``); with the rule off the same photos keep some."""
    import dataclasses

    pipe = request.getfixturevalue("default_top_down" if mode == "top-down" else "default_bottom_up")
    photos = [_small(name) for name in ("group.jpg", "two-dancers.jpg")]
    assert sum(_specks(pipe(photo)) for photo in photos) == 0
    default = pipe.top_down
    pipe.top_down = dataclasses.replace(default, speck_share=0.0)
    try:
        assert sum(_specks(pipe(photo)) for photo in photos) > 0
    finally:
        pipe.top_down = default


def test_a_whole_image_parse_scores_the_hidden_competitors_too(default_bottom_up):
    """Bottom-up mode (and the top-down fallback, which parses the same way) pools the same hidden competitors as
    top-down parsing: "saree" alone on the group photo, where nobody wears one, labels next to nothing, where
    without them it took a tenth of the photo; the people found are the same with and without them."""
    photo = _small("group.jpg")
    plan = default_bottom_up.whole_image_plan(["saree", "person"])
    assert plan.prompts == ["saree", "person", "(competitors)"] and plan.contested == [0] and "pants" in plan.pool
    assert default_bottom_up.whole_image_plan(["pants", "person"]).prompts == ["pants", "person"]  # no novel phrase

    def saree(pipe: SpectrumPipeline):
        result = pipe(photo, prompts=["saree"], ebp=False)
        assert result.labels == ["saree"]  # competitors are never reported
        return float((result.label_map > 0).mean()), result.persons

    share, persons = saree(default_bottom_up)
    off = SpectrumPipeline.from_pretrained(mode="bottom-up", competitors="off")
    share_off, persons_off = saree(off)
    assert share < 0.01 < 0.05 < share_off
    assert len(persons) == len(persons_off) > 0
    assert all(a.box == b.box and torch.equal(a.mask, b.mask) for a, b in zip(persons, persons_off))


def test_top_down_persons_do_not_depend_on_the_prompts(default_top_down):
    # the default list, one prompt alone, and a long list with a derived hand and garments of every group (every
    # prompt of the five lists this test once ran, in three parses: the suite's time)
    prompt_lists = [None, ["heels"],
                    ["saree", "scarf", "hat", "t-shirt", "jeans", "left hand", "bag", "dress", "skirt", "shorts",
                     "sunglasses", "coat", "jacket", "sweater", "boots", "gloves"]]
    photo = _small("group.jpg")
    persons = [default_top_down(photo, prompts=p).persons for p in prompt_lists]
    for other in persons[1:]:
        assert len(other) == len(persons[0]) == 5
        for a, b in zip(persons[0], other):
            assert a.box == b.box and torch.equal(a.mask, b.mask)


def test_top_down_needs_a_detector_and_reports_nobody_on_an_empty_scene(tiny_model_dir):
    model = SpectrumPipeline.from_pretrained(tiny_model_dir, mode="bottom-up").model
    with pytest.raises(ValueError, match="person_detector"):
        SpectrumPipeline(model, mode="top-down")
    with pytest.raises(ValueError, match="mode must be"):
        SpectrumPipeline.from_pretrained(tiny_model_dir, mode="sideways")
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    wall = np.full((120, 160, 3), 200, dtype=np.uint8)
    result = pipe(wall, prompts=["shirt"], score_threshold=0.0)
    assert result.persons == [] and not result.label_map.any()


def test_id_to_label_names_every_pixel_and_palette_neighbours_are_distinct(tiny_model_dir):

    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, mode="bottom-up")
    result = pipe(_small("group.jpg"), prompts=["shirt", "hat"], score_threshold=0.0)
    names = result.id_to_label
    assert names[0] == "background" and set(np.unique(result.label_map)) <= set(names)
    assert {int(k): v for k, v in result.to_dict()["labels"].items()} == {k: v for k, v in names.items() if k}
    colours = result.colours()
    png = result.label_map_image()
    assert np.array_equal(np.array(png.getpalette()[: 3 * 3]).reshape(3, 3), colours[:3])  # PNG = overlay colours
    assert not np.array_equal(colours[1], colours[2]) and colours[0].tolist() == [0, 0, 0]


def test_parse_command_side_by_side_overlay(tiny_model_dir, tmp_path):
    from spectrum_parsing.cli import main

    Image.open(EXAMPLES / "selfie.jpg").convert("RGB").resize((60, 80)).save(tmp_path / "a.jpg")
    assert main(["parse", str(tmp_path / "a.jpg"), "--model", str(tiny_model_dir), "--image-size", "64",
                 "--out", str(tmp_path / "out"), "--overlay", "side-by-side", "--format", "overlay,json"]) == 0
    overlay = Image.open(tmp_path / "out" / "a_overlay.png")
    assert overlay.width >= 2 * 60 and np.asarray(overlay)[10, 10].tolist() == np.asarray(
        Image.open(tmp_path / "a.jpg"))[10, 10].tolist()  # the photo, untouched, on the left


def test_parse_command_writes_tryon_masks(tiny_model_dir, tmp_path, capsys):
    from spectrum_parsing.cli import main

    Image.open(EXAMPLES / "group.jpg").convert("RGB").resize((160, 120)).save(tmp_path / "g.jpg")
    args = ["parse", str(tmp_path / "g.jpg"), "--model", str(tiny_model_dir), "--image-size", "64",
            "--out", str(tmp_path / "out"), "--format", "tryon,json"]
    assert main(args) == 2 and "--garment" in capsys.readouterr().err
    assert main([*args, "--garment", "upper"]) == 0
    folder = tmp_path / "out" / "g_tryon"
    data = json.loads((tmp_path / "out" / "g.json").read_text())
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(n for p in data["persons"]
                           for n in (f"person{p['id']}_agnostic_upper.png", f"person{p['id']}_lip.png"))


def test_competitors_and_body_part_naming_are_options_of_the_shipped_path(tiny_model_dir):
    default = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    assert default.top_down.body_parts == "sides" and default.top_down.competitors == "novel"
    plan = default.plan(["face", "left arm", "pants", "person"])
    assert "skin" in plan.prompts and not plan.pool  # bare skin named by pose; no novel phrase, no competitors
    plan = default.plan(["face", "left arm", "saree", "person"])
    assert "pants" in plan.pool and plan.contested == [2]  # "saree" (a synonym) alone is contested
    opted = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, body_parts="model", competitors=True)
    plan = opted.plan(["saree", "person"])
    assert "skin" not in plan.prompts and "pants" in plan.pool and "dress" not in plan.pool
    result = opted(_small("group.jpg"), prompts=["saree"], ebp=False)
    assert result.labels == ["saree"]  # competitors are scored, never reported
    assert {p.label for person in result.persons for p in person.parts} <= {"saree"}


def test_detector_finding_nobody_falls_back_to_the_parsers_confident_large_people(tiny_model_dir):
    from spectrum_parsing.persons import BoxDetector
    from spectrum_parsing.topdown import TopDownConfig

    nobody = BoxDetector(np.zeros((0, 4)))
    image = _small("selfie.jpg")

    def run(**fallback):  # -> ParsingResult
        pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, person_detector=nobody,
                                                top_down=TopDownConfig(person_masks="parser", **fallback))
        return pipe(image, prompts=["shirt"], score_threshold=0.0)

    assert run(fallback_score=1.0).persons == []  # fallback off: nobody found, nothing parsed
    found = run(fallback_score=0.0, fallback_share=0.0)
    assert found.persons and [p.id for p in found.persons] == list(range(len(found.persons)))
    rendered = np.zeros_like(found.label_map)
    for person in found.persons:
        for part in person.parts:
            rendered[part.mask.numpy()] = 1
    assert np.array_equal(rendered > 0, found.label_map > 0)
    assert run(fallback_score=0.0, fallback_share=1.0).persons == []  # nobody covers the whole photo
    with pytest.raises(ValueError, match="fallback_share"):
        TopDownConfig(fallback_share=2.0)


def _masks_by_label(result) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for person in result.persons:
        for part in person.parts:
            out[part.label] = out.get(part.label, np.zeros(result.label_map.shape, bool)) | part.mask.numpy()
    return out


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), reason="embedded model not built yet")
def test_a_person_the_detector_missed_is_parsed_top_down_with_blazeposes_pose(default_top_down):
    """The nobody-found fallback's person (the parser's own, confident and large) is parsed like a detected one,
    its pose from BlazePose's landmarks: on the selfie with a detector that finds nobody, face, hair, arms and shirt
    come out as the detected selfie's do; ``fallback_pose=False`` keeps the whole-image parse (no pose)."""
    from spectrum_parsing.persons import BoxDetector
    from spectrum_parsing.topdown import TopDownConfig

    image = _small("selfie.jpg")
    detected = _masks_by_label(default_top_down(image))
    nobody = BoxDetector(np.zeros((0, 4)))
    found = {}
    for pose in (True, False):
        pipe = SpectrumPipeline.from_pretrained(person_detector=nobody, top_down=TopDownConfig(fallback_pose=pose))
        result = pipe(image)
        assert len(result.persons) == 1
        assert (result.persons[0].keypoints is not None) == pose  # BlazePose's 17 COCO keypoints, as reported
        found[pose] = _masks_by_label(result)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max((a | b).sum(), 1))

    for label in ("face", "hair", "left arm", "right arm", "upper clothes"):
        assert iou(found[True][label], detected[label]) > 0.8, label


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), reason="embedded model not built yet")
def test_the_fallbacks_people_own_by_blazeposes_masks_alone(monkeypatch):
    """The fallback's boxes come from the parser's own person map, so that map does not complete their masks (it
    owned a neighbour it had merged into the box); detected people keep ``parser_person``."""
    from spectrum_parsing import pipeline as pipeline_module
    from spectrum_parsing.persons import BoxDetector

    used: list[float] = []
    real = pipeline_module.parse_top_down

    def spy(*args, **kwargs):
        used.append(args[5].parser_person)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "parse_top_down", spy)
    image = _small("selfie.jpg")
    SpectrumPipeline.from_pretrained(person_detector=BoxDetector(np.zeros((0, 4))))(image)
    SpectrumPipeline.from_pretrained()(image)
    assert used == [0.0, 0.6]


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), reason="embedded model not built yet")
def test_pascal_person_part_preset_partitions_each_person_by_pose():
    """PASCAL-Person-Part's parts (clothing included) come from each person's pixels and keypoints: every person
    of the group photo (all shown to below the hips) gets head, torso, both arm segments and upper legs, and the
    parts cover the person's pixels."""
    pipe = SpectrumPipeline.from_pretrained()
    result = pipe(EXAMPLES / "group.jpg", preset="pascal-person-part")
    assert len(result.persons) >= 4
    for person in result.persons:
        labels = {part.label for part in person.parts}
        assert {"head", "torso", "upper arms", "lower arms", "upper legs"} <= labels, labels
        covered = sum(int(part.mask.sum()) for part in person.parts)
        assert covered >= 0.95 * int(person.mask.sum())
    assert set(np.unique(result.label_map)) <= {0, *result.label_ids}


def test_flip_test_time_augmentation_makes_parsing_mirror_symmetric(tiny_model_dir):
    """With flip TTA a crop's scores are its own and its mirror's (mirrored back, left and right swapped), so
    parsing the mirrored photo gives the mirrored label map with left and right swapped — exactly; without it the
    tiny random model is not symmetric."""
    from spectrum_parsing.persons import BoxDetector
    from spectrum_parsing.topdown import TopDownConfig

    image = np.asarray(Image.open(EXAMPLES / "selfie.jpg").convert("RGB").resize((64, 64)))
    prompts = ["left shoe", "right shoe"]

    def maps(flip: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, flip=flip,
                                                person_detector=BoxDetector([[0, 0, 64, 64]]),
                                                person_segmenter=lambda im, boxes: torch.ones(len(boxes), 64, 64),
                                                top_down=TopDownConfig(margin=0.0))
        a = pipe(image, prompts=prompts, ebp=False, score_threshold=0.0, background_threshold=0.0)
        b = pipe(np.ascontiguousarray(image[:, ::-1]), prompts=prompts, ebp=False, score_threshold=0.0,
                 background_threshold=0.0)
        return a.label_map, b.label_map, a.labels

    a, b, labels = maps(True)
    left, right = labels.index("left shoe") + 1, labels.index("right shoe") + 1
    swapped = a[:, ::-1].copy()
    swapped[a[:, ::-1] == left], swapped[a[:, ::-1] == right] = right, left
    assert (a > 0).mean() > 0.5 and {left, right} <= set(np.unique(a))
    assert np.array_equal(b, swapped)
    a, b, _ = maps(False)
    swapped = a[:, ::-1].copy()
    swapped[a[:, ::-1] == left], swapped[a[:, ::-1] == right] = right, left
    assert not np.array_equal(b, swapped)


def test_people_hidden_behind_the_people_found_are_parsed_too(tiny_model_dir):
    """Peeling (persons.peeling) wired into top-down parsing: where the detector finds two people or more, it runs
    again with their person masks painted out, and the person it then finds behind them is parsed as well; with
    ``peel=False``, or a single person found, one pass."""
    from spectrum_parsing.persons import PersonDetections

    def pose(x: float) -> np.ndarray:
        k = np.zeros((1, 17, 3), np.float32)
        k[0, :, 0], k[0, :, 1], k[0, :, 2] = x + np.linspace(0, 20, 17), np.linspace(10, 110, 17), 0.9
        return k

    front = PersonDetections([[10, 0, 50, 120], [120, 0, 160, 120]], [0.9, 0.8], np.concatenate([pose(20),
                                                                                                  pose(130)]))
    behind = PersonDetections([[40, 0, 80, 120]], [0.5], pose(50))
    calls, first = [], [front]

    def detector(image: np.ndarray) -> PersonDetections:  # the front two first, the one behind them then
        calls.append(image)
        return first[0] if len(calls) == 1 else behind

    def segmenter(image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:  # each person's box is its mask
        out = torch.zeros(len(boxes), *image.shape[:2])
        for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, int)):
            out[k, y0:y1, x0:x1] = 0.9
        return out

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 170, 3), dtype=np.uint8)

    def people(**options) -> int:
        calls.clear()
        pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, person_detector=detector,
                                                person_segmenter=segmenter, **options)
        return len({tuple(p.box) for p in pipe(image, prompts=["shirt"], score_threshold=0.0).persons})

    assert people() == 3 and len(calls) == 2
    painted = calls[1]  # the second pass saw the front two painted out, one colour, the rest untouched
    assert (painted[60, 30] == painted[60, 140]).all() and not (image[60, 30] == image[60, 140]).all()
    assert (painted[60, 100] == image[60, 100]).all()
    assert people(peel=False) == 2 and len(calls) == 1
    first[0] = front.select([0])  # one person: no crowd to hide anyone, one pass
    assert people() == 1 and len(calls) == 1
