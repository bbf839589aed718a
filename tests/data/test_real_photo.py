"""Real-photo look (people on person-free photos, rotation, occluders, blur) and the no-person reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spectrum_parsing.data import open_dataset
from spectrum_parsing.data.sample import IGNORE_ID, Sample, Segment
from spectrum_parsing.data.targets import TargetConfig, collate, make_example
from spectrum_parsing.data.transforms import RealPhotoLook, paste_on_background, rotate_sample


def _person(h: int = 40, w: int = 30) -> Sample:
    image = np.full((h, w, 3), 200, np.uint8)
    body = np.zeros((h, w), bool)
    body[10:35, 10:20] = True
    shirt = body.copy()
    shirt[25:] = False
    semantic = np.zeros((h, w), np.int32)
    semantic[body] = 2
    semantic[shirt] = 1
    ignore = np.zeros((h, w), bool)
    ignore[0, :] = True  # an unlabelled row outside the person
    image[body] = 50
    return Sample(image=image, segments=[Segment("person", body, 0), Segment("shirt", shirt, 0)], semantic=semantic,
                  classes=["background", "shirt", "pants"], image_id="p", dataset="lip", ignore=ignore).validate()


def test_paste_keeps_the_person_and_makes_everything_else_known_background():
    sample = _person()
    back = np.zeros((60, 60, 3), np.uint8)
    back[..., 2] = 255  # a blue "bed"
    out = paste_on_background(sample, back, np.random.default_rng(0), feather=0)
    body = sample.segments[0].mask
    assert np.array_equal(out.image[body], sample.image[body])
    assert (out.image[~body][:, 2] == 255).all()
    assert (out.semantic[~body] == 0).all() and np.array_equal(out.semantic[body], sample.semantic[body])
    assert not out.ignore.any()  # the unlabelled row outside the person is now known background
    assert [s.category for s in out.segments] == ["person", "shirt"]


def test_paste_on_a_canvas_moves_masks_with_the_pixels():
    sample = _person()
    out = paste_on_background(sample, np.zeros((10, 10, 3), np.uint8), np.random.default_rng(3), feather=0,
                              canvas=(80, 90))
    assert out.size == (80, 90)
    body = out.segments[0].mask
    assert body.sum() == sample.segments[0].mask.sum()
    assert (out.image[body] == 50).all() and (out.image[~body] == 0).all()


def test_rotation_keeps_labels_on_their_pixels_and_ignores_the_new_corners():
    sample = _person(41, 41)
    out = rotate_sample(sample, 30.0)
    assert out.size == sample.size
    assert out.ignore[0, 0] and out.ignore[-1, -1]  # corners rotated in from outside the photo
    body = out.segments[0].mask
    assert (out.image[body] < 120).mean() > 0.9  # the dark body pixels moved with the mask
    assert rotate_sample(sample, 0.0).semantic.tolist() == sample.semantic.tolist()


def test_look_is_reproducible_and_occluders_hide_labels():
    sample = _person()
    backs = [_person()]  # any Sample serves as a background photo
    look = RealPhotoLook(rotate=0.5, background=0.5, occlude=1.0, blur=0.5, backgrounds=backs)
    a, b = look(sample, np.random.default_rng(7)), look(sample, np.random.default_rng(7))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    only_occlude = RealPhotoLook(rotate=0, background=0, occlude=1.0, blur=0)
    out = only_occlude(sample, np.random.default_rng(1))
    hidden = sample.segments[0].mask & ~out.segments[0].mask
    assert hidden.any() and (out.semantic[hidden] == 0).all()


@pytest.fixture()
def no_person_dir(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    for i in range(6):
        Image.new("RGB", (40, 30), (i * 30, 0, 0)).save(tmp_path / "images" / f"g{i}.jpg")
    (tmp_path / "images.csv").write_text("image,sender_id,label,kids\ng0,1,T-Shirt,False\ng1,1,Blazer,False\n"
                                         "g2,1,Unknownthing,False\n")
    return tmp_path


def test_no_person_reader_splits_and_labels_everything_background(no_person_dir):
    train = open_dataset(f"no-person:{no_person_dir}", split="train")
    val = open_dataset(f"no-person:{no_person_dir}", split="val")
    assert len(train) == 4 and len(val) == 2 and not set(train.image_ids) & set(val.image_ids)
    every = open_dataset(f"no-person:{no_person_dir}", split="all")
    sample = every.load("g0")
    assert sample.segments == [] and (sample.semantic == 0).all() and sample.tags == ["t-shirt"]
    assert every.load("g2").tags == []  # labels with no canonical category are not guessed
    assert (sample.semantic != IGNORE_ID).all()


def test_the_garment_a_negative_photo_shows_is_always_offered_as_a_phrase(no_person_dir):
    every = open_dataset(f"no-person:{no_person_dir}", split="all")
    config = TargetConfig(withheld=["blazer"], num_negative_phrases=0)
    shirt, blazer = make_example(every.load("g0"), config), make_example(every.load("g1"), config)
    assert shirt.absent == ["t-shirt"] and blazer.absent == []  # withheld categories never become phrases
    person = make_example(_person(), config)
    batch = collate([person, shirt], config, np.random.default_rng(0))
    assert "t-shirt" in batch["categories"]
    assert batch["targets"][1]["labels"].numel() == 0  # nothing to find in the negative photo
