"""Dataset readers: tiny synthetic datasets written in each on-disk format, the committed real fixtures
(tests/fixtures, see its README) and, when present, the full shared datasets."""

from __future__ import annotations

import json
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from spectrum_parsing.data import FORMATS, IGNORE_ID, ParsingDataset, Sample, open_dataset, split_ids
from spectrum_parsing.data.base import label_map_segments, lookup_canonical
from spectrum_parsing.data.formats import CCP_LABELS, LIP_LABELS, voc_colormap

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
H, W = 12, 10


# ---------------------------------------------------------------- helpers writing tiny datasets


def write_image(path: Path, h: int = H, w: int = W, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def write_ids(path: Path, ids: np.ndarray, mode: str = "P") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids.astype(np.uint8), mode="L")
    if mode == "P":
        im = im.convert("P")
        im.putpalette(voc_colormap(256).ravel().tolist())
    im.save(path)


def label_map(h: int = H, w: int = W, **boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    """A label map with rectangles: name=(id, y0, y1, x0, x1)."""
    out = np.zeros((h, w), dtype=np.uint8)
    for cid, y0, y1, x0, x1 in boxes.values():
        out[y0:y1, x0:x1] = cid
    return out


def by_category(sample: Sample, person: int = 0) -> dict[str, np.ndarray]:
    return {s.category: s.mask for s in sample.segments if s.person == person}


def ccp_tree(root: Path) -> None:
    names = np.empty((1, len(CCP_LABELS)), dtype=object)
    for i, n in enumerate(CCP_LABELS):
        names[0, i] = np.array([n])
    root.mkdir(parents=True)
    scipy.io.savemat(root / "label_list.mat", {"label_list": names})
    hair, skin, tshirt = CCP_LABELS.index("hair"), CCP_LABELS.index("skin"), CCP_LABELS.index("t-shirt")
    for k, stem in enumerate(["0001", "0002", "0004"]):
        write_image(root / "photos" / f"{stem}.jpg", seed=k)
        gt = label_map(hair=(hair, 0, 3, 2, 8), skin=(skin, 3, 5, 2, 8), tee=(tshirt, 5, 10, 1, 9))
        (root / "annotations" / "pixel-level").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "annotations" / "pixel-level" / f"{stem}.mat", {"groundtruth": gt})
    for k, stem in enumerate(["1005", "1006"]):
        write_image(root / "photos" / f"{stem}.jpg", seed=10 + k)
        tags = np.array([[0, hair, skin, tshirt]], dtype=np.uint8)
        (root / "annotations" / "image-level").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "annotations" / "image-level" / f"{stem}.mat", {"tags": tags})
    write_image(root / "photos" / "1007.jpg", seed=20)  # a photo with no annotation at all


# ---------------------------------------------------------------- shared helpers


def test_split_rule_is_deterministic_and_partitions():
    ids = [f"{i:04d}" for i in range(25)][::-1]
    val, train = split_ids(ids, "val"), split_ids(ids, "train")
    assert val == ["0000", "0010", "0020"]
    assert sorted(val + train) == split_ids(ids, "all") == sorted(ids)
    assert split_ids(ids, "val", val_fraction=0.5) == [f"{i:04d}" for i in range(0, 25, 2)]
    with pytest.raises(ValueError, match="split"):
        split_ids(ids, "test")
    with pytest.raises(ValueError, match="val_fraction"):
        split_ids(ids, "val", val_fraction=0.0)


def test_label_map_segments_single_and_multi_person():
    sem = np.array([[0, 1, 1, 2], [0, 3, IGNORE_ID, 2]], dtype=np.int32)
    canonical = [None, "hair", "face", "face"]  # ids 2 and 3 share a canonical name -> merged
    segs = label_map_segments(sem, canonical)
    cats = {s.category: s.mask for s in segs}
    assert set(cats) == {"person", "hair", "face"} and all(s.person == 0 for s in segs)
    assert cats["person"].sum() == 5 and not cats["person"][1, 2]  # ignore and background excluded
    assert cats["face"].sum() == 3
    persons = np.array([[0, 7, 7, 3], [0, 7, 0, 3]])
    segs = label_map_segments(sem, canonical, persons)
    assert {(s.person, s.category) for s in segs} == {(0, "person"), (0, "face"), (1, "person"), (1, "hair"),
                                                       (1, "face")}
    assert next(s for s in segs if s.person == 0 and s.category == "person").mask.sum() == 2  # raw id 3 -> 0


def test_lookup_canonical_handles_lists_and_plurals():
    assert lookup_canonical("Left-Arm") == "left arm"
    assert lookup_canonical("bag, wallet") == "bag"
    assert lookup_canonical("scarf/tie") == "scarf"
    assert lookup_canonical("skirts") == "skirt"
    assert lookup_canonical("sleeve") is None
    assert lookup_canonical("outer", {"outer": "coat"}) == "coat"


# ---------------------------------------------------------------- CCP


def test_ccp_pixel_and_image_level(tmp_path):
    ccp_tree(tmp_path / "ccp")
    ds = open_dataset(f"ccp:{tmp_path / 'ccp'}")
    assert isinstance(ds, ParsingDataset) and ds.name == "ccp"
    assert ds.image_ids == ["0001", "0002", "0004"] and len(ds) == 3
    assert ds.classes[0] == "null" and ds.canonical[0] is None
    assert ds.canonical[ds.classes.index("t-shirt")] == "t-shirt"
    assert ds.canonical[ds.classes.index("skin")] == "skin"
    s = ds[0]
    assert s.dataset == "ccp" and s.size == (H, W) and s.semantic.dtype == np.int32 and not s.has_instances
    cats = by_category(s)
    assert set(cats) == {"person", "hair", "skin", "t-shirt"}
    assert cats["hair"].sum() == 18 and cats["person"].sum() == 18 + 12 + 40
    assert s.ignore is None and s.tags == []

    both = open_dataset(f"ccp:{tmp_path / 'ccp'}", image_level=True)
    assert both.image_ids == ["0001", "0002", "0004", "1005", "1006"]
    weak = both.load("1005")
    assert weak.segments == [] and weak.tags == ["hair", "skin", "t-shirt"]
    assert (weak.semantic == IGNORE_ID).all() and weak.ignore is not None and weak.ignore.all()
    only = open_dataset(f"ccp:{tmp_path / 'ccp'}", image_level="only")
    assert only.image_ids == ["1005", "1006"]

    train = open_dataset(f"ccp:{tmp_path / 'ccp'}", split="train")
    val = open_dataset(f"ccp:{tmp_path / 'ccp'}", split="val")
    assert val.image_ids == ["0001"] and train.image_ids == ["0002", "0004"]


def test_ccp_body_parts_reads_the_label_engines_maps(tmp_path):
    from spectrum_parsing.data.pose_labels import BODY_PART_CLASSES, extended_classes, split_skin, write_body_part_map
    from spectrum_parsing.data.transforms import hflip

    ccp_tree(tmp_path / "ccp")
    plain = open_dataset(f"ccp:{tmp_path / 'ccp'}")
    sample = plain.load("0002")
    skin_id = plain.classes.index("skin")
    keypoints = np.zeros((17, 3))
    keypoints[[5, 7, 9], :] = [[6, 2, 0.9], [6, 5, 0.9], [6, 8, 0.9]]  # a left arm down the skin stripe
    keypoints[[6, 11, 12], :] = [[1, 2, 0.9], [4, 11, 0.9], [2, 11, 0.9]]
    derived = split_skin(sample.semantic, plain.classes, keypoints)
    assert not (derived == skin_id).any() and (derived == len(plain.classes) + 1).any()  # all skin -> left arm
    assert np.array_equal(derived[sample.semantic != skin_id], sample.semantic[sample.semantic != skin_id])
    write_body_part_map(tmp_path / "parts" / "0002.png", derived)
    ds = open_dataset(f"ccp:{tmp_path / 'ccp'}", body_parts=str(tmp_path / "parts"))
    assert ds.classes == [*plain.classes, *BODY_PART_CLASSES] and ds.image_ids == plain.image_ids
    cats = by_category(ds.load("0002"))
    assert "left arm" in cats and "skin" not in cats
    np.testing.assert_array_equal(cats["left arm"], sample.semantic == skin_id)
    assert "skin" in by_category(ds.load("0001"))  # no derived map: read from its .mat
    flipped = hflip(ds.load("0002"))
    assert "right arm" in by_category(flipped)
    with pytest.raises(FileNotFoundError, match="body_parts"):
        open_dataset(f"ccp:{tmp_path / 'ccp'}", body_parts=str(tmp_path / "nowhere"))
    assert split_skin(sample.semantic, plain.classes, None).tolist() == sample.semantic.tolist()
    with pytest.raises(ValueError, match="already labels"):
        extended_classes(ds.classes)


def test_ccp_bad_ids_and_size_mismatch(tmp_path):
    root = tmp_path / "ccp"
    ccp_tree(root)
    gt = label_map(hair=(19, 0, 3, 0, 3), bad=(80, 5, 6, 5, 6))
    scipy.io.savemat(root / "annotations" / "pixel-level" / "0002.mat", {"groundtruth": gt})
    scipy.io.savemat(root / "annotations" / "pixel-level" / "0004.mat", {"groundtruth": np.zeros((5, 5), np.uint8)})
    ds = open_dataset(f"ccp:{root}")
    with pytest.warns(UserWarning, match="not in the dataset"):
        s = ds.load("0002")
    assert s.semantic[5, 5] == IGNORE_ID and s.ignore is not None and s.ignore.sum() == 1
    with pytest.raises(ValueError, match="0004.mat"):
        ds.load("0004")
    scipy.io.savemat(root / "annotations" / "pixel-level" / "0004.mat", {"groundtruth": np.zeros((H, W), np.uint8)})
    with pytest.warns(UserWarning, match="no label but 'null'"):
        s = ds.load("0004")
    assert s.segments == [] and (s.semantic == IGNORE_ID).all() and s.ignore is not None and s.ignore.all()


# ---------------------------------------------------------------- LIP / VITON


def test_lip_own_layout_uses_official_split(tmp_path):
    root = tmp_path / "LIP"
    lbl = label_map(face=(13, 0, 4, 2, 8), la=(14, 4, 8, 0, 3), rs=(19, 10, 12, 6, 9))
    for split, stems in (("train", ["a1", "a2", "a3"]), ("val", ["b1"])):
        for k, stem in enumerate(stems):
            write_image(root / "TrainVal_images" / f"{split}_images" / f"{stem}.jpg", seed=k)
            write_ids(root / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{stem}.png", lbl)
    write_image(root / "TrainVal_images" / "train_images" / "orphan.jpg")  # no label: not a sample
    ds = open_dataset(f"lip:{root}")
    assert ds.image_ids == ["a1", "a2", "a3", "b1"]
    assert open_dataset(f"lip:{root}", split="val").image_ids == ["b1"]
    assert open_dataset(f"lip:{root}", split="train").image_ids == ["a1", "a2", "a3"]
    assert ds.classes == list(LIP_LABELS)
    assert ds.canonical[14:20] == ["left arm", "right arm", "left leg", "right leg", "left shoe", "right shoe"]
    assert ds.canonical[3] == "gloves" and ds.canonical[5] == "upper clothes" and ds.canonical[10] == "jumpsuit"
    cats = by_category(ds[0])
    assert set(cats) == {"person", "face", "left arm", "right shoe"} and cats["right shoe"].sum() == 6


def test_lip_flat_and_viton_layouts(tmp_path):
    flat = tmp_path / "flat"
    for split in ("train", "val"):
        write_image(flat / f"{split}_images" / f"{split}1.jpg")
        write_ids(flat / f"{split}_segmentations" / f"{split}1.png", label_map(hair=(2, 0, 2, 0, 2)), mode="L")
    assert open_dataset(f"lip:{flat}", split="val").image_ids == ["val1"]

    viton = tmp_path / "viton"
    for k in range(12):
        write_image(viton / "image" / f"{k:06d}_0.jpg", h=16, w=12, seed=k)
        write_ids(viton / "image-parse" / f"{k:06d}_0.png", label_map(16, 12, hair=(2, 0, 3, 3, 9)))
    ds = open_dataset(f"lip:{viton}")
    assert len(ds) == 12 and ds[3].size == (16, 12) and set(by_category(ds[3])) == {"person", "hair"}
    assert open_dataset(f"lip:{viton}", split="val").image_ids == ["000000_0", "000010_0"]
    write_ids(viton / "image-parse" / "000005_0.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="000005_0.png"):
        ds.load("000005_0")
    write_image(viton / "image" / "000099_0.jpg", h=16, w=12)  # a photo whose label map is missing
    with pytest.warns(UserWarning, match="1 photo\\(s\\) have no label map and are left out"):
        again = open_dataset(f"lip:{viton}")
    assert again.unlabelled == ["000099_0.jpg"] and len(again) == 12


# ---------------------------------------------------------------- CIHP


def write_cihp(d: Path, stem: str, cat: np.ndarray, human: np.ndarray | None, seed: int = 0) -> None:
    write_image(d / "Images" / f"{stem}.jpg", seed=seed)
    write_ids(d / "Category_ids" / f"{stem}.png", cat)
    if human is not None:
        write_ids(d / "Human_ids" / f"{stem}.png", human)
        write_ids(d / "Instance_ids" / f"{stem}.png", human)


def test_cihp_two_persons_and_splits(tmp_path):
    root = tmp_path / "instance-level_human_parsing"
    cat = label_map(f1=(13, 0, 4, 0, 4), a1=(14, 4, 8, 0, 4), f2=(13, 0, 4, 6, 10), t2=(10, 4, 8, 6, 10))
    human = label_map(p1=(1, 0, 8, 0, 4), p2=(2, 0, 8, 6, 10))
    write_cihp(root / "Training", "0000001", cat, human)
    write_cihp(root / "Training", "0000002", cat, human, seed=1)
    write_cihp(root / "Validation", "0000003", cat, None, seed=2)  # no instance maps: semantic only
    ds = open_dataset(f"cihp:{root}")
    assert ds.image_ids == ["0000001", "0000002", "0000003"]
    assert open_dataset(f"cihp:{root}", split="val").image_ids == ["0000003"]
    assert ds.canonical[10] == "torso" and ds.classes[10] == "torso-skin"
    s = ds[0]
    assert s.has_instances
    assert {(g.person, g.category) for g in s.segments} == {
        (0, "person"), (0, "face"), (0, "left arm"), (1, "person"), (1, "face"), (1, "torso")}
    p0, p1 = by_category(s, 0), by_category(s, 1)
    assert p0["person"].sum() == 32 and p0["person"][:8, :4].all() and not p0["person"][:, 6:].any()
    assert p1["face"].sum() == 16 and not (p0["face"] & p1["face"]).any()
    flat = ds.load("0000003")
    assert not flat.has_instances and {g.person for g in flat.segments} == {0}
    assert by_category(flat)["face"].sum() == 32  # both faces in one semantic-only segment


def test_cihp_id_lists(tmp_path):
    root = tmp_path / "cihp"
    cat = label_map(hair=(2, 0, 3, 0, 3))
    for k, stem in enumerate(["x1", "x2", "x3"]):
        write_cihp(root, stem, cat, label_map(p=(1, 0, 3, 0, 3)), seed=k)
    (root / "train_id.txt").write_text("x1\nx3\n")
    (root / "val_id.txt").write_text("x2\n")
    assert open_dataset(f"cihp:{root}", split="train").image_ids == ["x1", "x3"]
    assert open_dataset(f"cihp:{root}", split="val").image_ids == ["x2"]


# ---------------------------------------------------------------- PASCAL-Person-Part


def test_pascal_person_part_palette_and_ids(tmp_path):
    root = tmp_path / "ppp"
    lbl = label_map(head=(1, 0, 3, 2, 6), torso=(2, 3, 7, 2, 7), ua=(3, 3, 6, 0, 2), ll=(6, 9, 12, 3, 5))
    write_image(root / "JPEGImages" / "2008_000001.jpg")
    write_ids(root / "SegmentationPart" / "2008_000001.png", lbl, mode="P")
    write_image(root / "JPEGImages" / "2008_000002.jpg", seed=1)
    rgb = voc_colormap()[lbl]
    rgb[11, 0] = voc_colormap()[255]  # VOC boundary colour -> ignore
    Image.fromarray(rgb, mode="RGB").save(root / "SegmentationPart" / "2008_000002.png")
    write_image(root / "JPEGImages" / "2008_000003.jpg", seed=2)  # no part labels: not a sample
    (root / "train_id.txt").write_text("2008_000001\n2008_000003\n")
    (root / "val_id.txt").write_text("2008_000002\n")
    ds = open_dataset(f"pascal-person-part:{root}")
    assert ds.image_ids == ["2008_000001", "2008_000002"]
    assert ds.canonical == [None, "head", "torso", "upper arm", "lower arm", "upper leg", "lower leg"]
    a, b = ds[0], ds[1]
    assert np.array_equal(a.semantic, lbl)
    expected = lbl.astype(np.int32)
    expected[11, 0] = IGNORE_ID
    assert np.array_equal(b.semantic, expected) and b.ignore is not None and b.ignore.sum() == 1
    assert set(by_category(a)) == {"person", "head", "torso", "upper arm", "lower leg"}
    assert open_dataset(f"pascal-person-part:{root}", split="train").image_ids == ["2008_000001"]
    assert open_dataset(f"pascal-person-part:{root}", split="val").image_ids == ["2008_000002"]


def test_pascal_colours_a_level_or_two_off_are_read_and_far_ones_refused(tmp_path):
    from spectrum_parsing.data.formats.pascal import colors_to_ids

    lbl = label_map(head=(1, 0, 3, 2, 6), torso=(2, 3, 7, 2, 7), ua=(3, 3, 6, 0, 2))
    rgb = voc_colormap()[lbl].astype(np.int16)
    rgb[lbl == 1] -= np.array([1, 0, 0], dtype=np.int16)  # head (128, 0, 0) stored as (127, 0, 0)
    rgb[lbl == 2] += np.array([0, 2, 0], dtype=np.int16)  # torso (0, 128, 0) stored as (0, 130, 0)
    with pytest.warns(UserWarning, match="pixel"):
        ids = colors_to_ids(rgb.clip(0, 255).astype(np.uint8), 7, "x.png")
    assert np.array_equal(ids, lbl)
    rgb[0, 0] = (200, 30, 90)
    with pytest.raises(ValueError, match="x.png: colours \\[\\(200, 30, 90\\)\\] are not PASCAL"):
        colors_to_ids(rgb.clip(0, 255).astype(np.uint8), 7, "x.png")


# ---------------------------------------------------------------- ATR


def test_atr_layout_and_labels(tmp_path):
    root = tmp_path / "ATR" / "humanparsing"
    lbl = label_map(belt=(8, 5, 6, 0, 10), ls=(9, 10, 12, 0, 4), bag=(16, 0, 2, 0, 2))
    for k in range(3):
        write_image(root / "JPEGImages" / f"img{k}.jpg", seed=k)
        write_ids(root / "SegmentationClassAug" / f"img{k}.png", lbl, mode="L")
    ds = open_dataset(f"atr:{tmp_path / 'ATR'}")
    assert len(ds) == 3 and len(ds.classes) == 18
    assert ds.canonical[8] == "belt" and ds.canonical[9] == "left shoe" and ds.canonical[11] == "face"
    assert set(by_category(ds[2])) == {"person", "belt", "left shoe", "bag"}
    assert open_dataset(f"atr:{tmp_path / 'ATR'}", split="val").image_ids == ["img0"]


# ---------------------------------------------------------------- COCO


def coco_json(tmp_path: Path, with_person_ids: bool = False) -> Path:
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.jpg", h=20, w=20)
    write_image(tmp_path / "images" / "b.jpg", h=20, w=20, seed=1)
    write_image(tmp_path / "images" / "c.jpg", h=20, w=20, seed=2)
    dress = np.zeros((20, 20), np.uint8)
    dress[2:18, 2:10] = 1
    belt = np.zeros((20, 20), np.uint8)
    belt[9:11, 0:20] = 1
    rle = mask_utils.encode(np.asfortranarray(belt))
    rle["counts"] = rle["counts"].decode("ascii")
    flat = belt.ravel(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    anns = [
        {"id": 1, "image_id": 10, "category_id": 7, "segmentation": rle, "area": 40, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "iscrowd": 0, "area": 128,
         "segmentation": [[2, 2, 10, 2, 10, 18, 2, 18]]},
        {"id": 3, "image_id": 11, "category_id": 5, "iscrowd": 0, "area": 40,
         "segmentation": {"size": [20, 20], "counts": runs}},
        {"id": 4, "image_id": 11, "category_id": 9, "iscrowd": 0, "area": 400,
         "segmentation": [[0, 0, 20, 0, 20, 20, 0, 20]]},
    ]
    if with_person_ids:
        anns += [{"id": 5, "image_id": 10, "category_id": 3, "iscrowd": 0, "area": 16,
                  "segmentation": [[14, 14, 18, 14, 18, 18, 14, 18]]}]
        for a, pid in zip(anns, [1, 1, 4, 4, 2]):
            a["person_id"] = pid
    data = {
        "images": [{"id": 10, "file_name": "a.jpg", "height": 20, "width": 20},
                   {"id": 11, "file_name": "b.jpg", "height": 20, "width": 20},
                   {"id": 12, "file_name": "c.jpg", "height": 20, "width": 20}],
        "annotations": anns,
        "categories": [{"id": 7, "name": "belt"}, {"id": 3, "name": "Dress"}, {"id": 5, "name": "Leg Warmer"},
                       {"id": 9, "name": "person"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_polygon_rle_and_category_mapping(tmp_path):
    path = coco_json(tmp_path)
    with pytest.warns(UserWarning, match="Leg Warmer"):
        ds = open_dataset(f"coco:{path}")
    assert ds.image_ids == ["a", "b"]  # c has no annotation
    assert ds.classes == ["background", "Dress", "Leg Warmer", "belt", "person"]  # sorted COCO ids 3, 5, 7, 9
    assert ds.canonical == [None, "dress", "leg warmer", "belt", "person"]
    a = ds[0]
    assert not a.has_instances and a.semantic[9, 5] == 3 and a.semantic[3, 5] == 1  # small belt painted on top
    cats = by_category(a)
    assert set(cats) == {"person", "dress", "belt"}
    assert cats["dress"].sum() == 128 and cats["belt"].sum() == 40
    assert cats["person"].sum() == (cats["dress"] | cats["belt"]).sum()
    b = ds[1]
    cats = by_category(b)
    assert cats["person"].all() and cats["leg warmer"].sum() == 40  # person category -> person segment
    assert (b.semantic == 2).sum() == 40 and (b.semantic == 4).sum() == 360
    assert len(open_dataset(f"coco:{path}", skip_empty=False)) == 3


def test_coco_person_ids_and_images_dir(tmp_path):
    path = coco_json(tmp_path, with_person_ids=True)
    moved = tmp_path / "elsewhere"
    (tmp_path / "images").rename(moved)
    ds = open_dataset(f"coco:{path}::{moved}", category_map={"Leg Warmer": "socks"})
    assert ds.canonical[2] == "socks"
    a = ds.load("a")
    assert a.has_instances
    assert {(s.person, s.category) for s in a.segments} == {(0, "person"), (0, "dress"), (0, "belt"),
                                                            (1, "person"), (1, "dress")}
    assert by_category(a, 1)["dress"].sum() == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unmapped 'Leg Warmer' (when this test runs alone)
        default = open_dataset(f"coco:{path}")
    with pytest.raises(FileNotFoundError, match="a.jpg"):
        default.load("a")


# ---------------------------------------------------------------- open_dataset, pickling


def test_open_dataset_errors(tmp_path):
    assert set(FORMATS) == {"ccp", "lip", "cihp", "pascal-person-part", "atr", "coco", "no-person"}
    with pytest.raises(ValueError, match="known formats: ccp, lip"):
        open_dataset(f"mhp:{tmp_path}")
    with pytest.raises(ValueError, match="FORMAT:PATH"):
        open_dataset("ccp")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(f"lip:{tmp_path / 'missing'}")
    for fmt in ("ccp", "lip", "cihp", "pascal-person-part", "atr"):
        with pytest.raises(ValueError, match="no .* layout found"):
            open_dataset(f"{fmt}:{tmp_path}")
    with pytest.raises(ValueError, match="COCO JSON"):
        open_dataset(f"coco:{tmp_path}")
    with pytest.raises(ValueError, match="split"):
        open_dataset(f"lip:{FIXTURES / 'viton'}", split="test")


def test_readers_pickle_and_load_lazily(tmp_path):
    ccp_tree(tmp_path / "ccp")
    ds = open_dataset(f"ccp:{tmp_path / 'ccp'}")
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.image_ids == ds.image_ids
    assert np.array_equal(clone[1].semantic, ds[1].semantic)


# ---------------------------------------------------------------- committed real fixtures


def test_real_ccp_fixture():
    ds = open_dataset(f"ccp:{FIXTURES / 'ccp'}")
    assert ds.image_ids == ["0141", "0667"] and ds.classes[19] == "hair" and ds.classes[41] == "skin"
    assert len(ds.classes) == 59 and ds.canonical[ds.classes.index("t-shirt")] == "t-shirt"
    for s in ds:
        assert s.image.shape[:2] == s.semantic.shape
        cats = by_category(s)
        assert {"person", "hair", "skin"} <= set(cats)
        assert cats["hair"].sum() > 1000 and cats["skin"].sum() > 1000
        assert all(c in ds.canonical for c in cats if c != "person")
    s = ds.load("0141")
    assert {"coat", "sweater", "pants", "sneakers", "gloves", "glasses", "bag"} <= set(by_category(s))


def test_real_viton_fixture():
    ds = open_dataset(f"lip:{FIXTURES / 'viton'}")
    assert ds.image_ids == ["000325_0", "002792_0"]
    for s in ds:
        assert s.size == (256, 192)
        cats = by_category(s)
        assert {"person", "face", "left arm", "right arm", "hair", "upper clothes"} <= set(cats)
        assert cats["person"].sum() == (s.semantic > 0).sum()


# ---------------------------------------------------------------- full shared datasets (skipped when absent)


def test_shared_ccp_and_viton(shared_dir):
    root = shared_dir / "datasets"
    ccp = open_dataset(f"ccp:{root / 'ccp'}")
    assert len(ccp) == 804
    train = open_dataset(f"ccp:{root / 'ccp'}", split="train")
    val = open_dataset(f"ccp:{root / 'ccp'}", split="val")
    assert not set(train.image_ids) & set(val.image_ids)
    assert sorted(train.image_ids + val.image_ids) == ccp.image_ids and len(val) == 81
    viton = open_dataset(f"lip:{root / 'viton'}")
    assert len(viton) == 4000
    rng = random.Random(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unknown label ids in these samples
        for ds in (ccp, viton):
            for i in rng.sample(range(len(ds)), 3):
                s = ds[i]
                assert s.segments[0].category == "person" and all(g.mask.any() for g in s.segments)
    with pytest.warns(UserWarning, match="no label but 'null'"):
        empty = ccp.load("0536")  # the release's one all-'null' map: a missing annotation, read as all ignore
    assert empty.segments == [] and empty.ignore is not None and empty.ignore.all()
