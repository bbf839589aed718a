"""Augmentations on Samples: flips, scale/crop, colour jitter, resizing and copy-paste composites."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from spectrum_parsing.data.sample import IGNORE_ID, Sample, Segment
from spectrum_parsing.data.transforms import (
    ColorJitter,
    Compose,
    CopyPasteComposite,
    RandomHFlip,
    RandomScaleCrop,
    ResizeLongestSide,
    hflip,
    remap_semantic,
    semantic_swap_pairs,
)
from spectrum_parsing.vocab import categories as vocabulary

CLASSES = ["background", "hair", "face", "upper-clothes", "left-arm", "right-arm", "pants", "left-shoe", "right-shoe"]
# Part boxes (y0, y1, x0, x1) relative to the person's top-left corner; the person's left is the image's right.
PARTS = {
    "hair": (0, 4, 8, 16),
    "face": (4, 10, 8, 16),
    "upper-clothes": (10, 22, 4, 20),
    "left-arm": (10, 22, 20, 24),
    "right-arm": (10, 22, 0, 4),
    "pants": (22, 36, 4, 20),
    "left-shoe": (36, 40, 12, 20),
    "right-shoe": (36, 40, 4, 12),
}
PALETTE = {name: np.array([(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 120) % 256], np.uint8)
           for i, name in enumerate(CLASSES)}
BACKGROUND = np.array([128, 128, 128], np.uint8)


def make_person(h: int = 48, w: int = 40, top: int = 4, left: int = 8, image_id: str = "img",
                classes: list[str] | None = None, extra: str | None = None) -> Sample:
    """A single-person sample: each part a solid colour, semantic ids by ``classes``, segments canonical."""
    classes = list(classes or CLASSES)
    image = np.broadcast_to(BACKGROUND, (h, w, 3)).copy()
    semantic = np.zeros((h, w), np.int32)
    segments = []
    parts = dict(PARTS)
    if extra is not None:  # an extra part drawn over the face
        parts[extra] = (6, 9, 9, 15)
    for name, (y0, y1, x0, x1) in parts.items():
        mask = np.zeros((h, w), bool)
        mask[top + y0 : top + y1, left + x0 : left + x1] = True
        for seg in segments:  # later parts are drawn on top
            seg.mask &= ~mask
        image[mask] = PALETTE.get(name, np.array([250, 10, 200], np.uint8))
        semantic[mask] = [c.lower() for c in classes].index(name)
        segments.append(Segment(vocabulary.canonical_name(name), mask, 0))
    person = np.logical_or.reduce([s.mask for s in segments])
    return Sample(image=image, segments=[Segment("person", person, 0), *segments], semantic=semantic,
                  classes=classes, image_id=image_id, dataset="toy").validate()


def seg_of(sample: Sample, category: str, person: int = 0) -> np.ndarray:
    found = [s.mask for s in sample.segments if s.category == category and s.person == person]
    assert len(found) == 1, (category, person, [(s.category, s.person) for s in sample.segments])
    return found[0]


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        p = np.pad(out, 1)
        out = out & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return out


def assert_same(a: Sample, b: Sample) -> None:
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.semantic, b.semantic)
    assert (a.ignore is None) == (b.ignore is None)
    if a.ignore is not None:
        np.testing.assert_array_equal(a.ignore, b.ignore)
    assert [(s.category, s.person) for s in a.segments] == [(s.category, s.person) for s in b.segments]
    for s, t in zip(a.segments, b.segments):
        np.testing.assert_array_equal(s.mask, t.mask)
    assert a.classes == b.classes and a.tags == b.tags and a.image_id == b.image_id


def assert_colours_aligned(sample: Sample, radius: int, min_checked: int = 50) -> None:
    """Interior pixels of every part segment have that part's colour and semantic id."""
    checked = 0
    canon_to_class = {vocabulary.canonical_name(c): c for c in CLASSES[1:]}
    for seg in sample.segments:
        if seg.category == "person":
            continue
        name = canon_to_class[seg.category]
        inner = erode(seg.mask, radius)
        diff = np.abs(sample.image[inner].astype(int) - PALETTE[name].astype(int))
        assert diff.max(initial=0) <= 2, (seg.category, diff.max())
        assert (sample.semantic[seg.mask] == sample.classes.index(name)).all(), seg.category
        checked += int(inner.sum())
    assert checked >= min_checked


# ---------------------------------------------------------------------------------------------
# flips
# ---------------------------------------------------------------------------------------------


def test_swap_pairs_by_name() -> None:
    classes = ["background", "Left-arm", "Right-arm", "leftLeg", "rightLeg", "hat", "left_shoe", "LEFT_GLOVE",
               "RIGHT_GLOVE"]
    assert semantic_swap_pairs(classes) == [(1, 2), (3, 4), (7, 8)]
    assert semantic_swap_pairs(CLASSES) == [(4, 5), (7, 8)]


def test_hflip_swaps_left_right_and_twice_is_identity() -> None:
    sample = make_person()
    sample.ignore = np.zeros(sample.size, bool)
    sample.ignore[0, :5] = True
    sample.tags = ["left shoe", "hat"]
    before = copy.deepcopy(sample)
    flipped = hflip(sample)
    assert_same(sample, before)  # input untouched

    # Categories: the mask of "left arm" is the mirrored mask of "right arm", and vice versa.
    for cat in ("left arm", "right arm", "left shoe", "right shoe"):
        np.testing.assert_array_equal(seg_of(flipped, cat), seg_of(sample, vocabulary.mirror(cat))[:, ::-1])
    np.testing.assert_array_equal(seg_of(flipped, "face"), seg_of(sample, "face")[:, ::-1])
    # Semantic ids are swapped too: pixels of the (new) left arm carry the left-arm id.
    assert (flipped.semantic[seg_of(flipped, "left arm")] == CLASSES.index("left-arm")).all()
    assert (flipped.semantic[seg_of(flipped, "right shoe")] == CLASSES.index("right-shoe")).all()
    np.testing.assert_array_equal(flipped.image, sample.image[:, ::-1])
    np.testing.assert_array_equal(flipped.ignore, sample.ignore[:, ::-1])
    assert flipped.tags == ["right shoe", "hat"]

    assert_same(hflip(flipped), sample)


def test_random_hflip_probability() -> None:
    sample = make_person()
    rng = np.random.default_rng(0)
    kept = RandomHFlip(p=0.0)(sample, rng)
    assert_same(kept, sample)
    kept.image[:] = 0  # outputs share no arrays with their inputs
    kept.segments[0].mask[:] = False
    assert sample.image.any() and sample.segments[0].mask.any()
    assert_same(RandomHFlip(p=1.0)(sample, rng), hflip(sample))
    flips = [RandomHFlip(0.5)(sample, rng).segments[4].category for _ in range(200)]  # index 4 = "left arm"
    assert 60 < flips.count("right arm") < 140


# ---------------------------------------------------------------------------------------------
# scale / crop / resize
# ---------------------------------------------------------------------------------------------


def test_crop_at_unit_scale_is_an_exact_window() -> None:
    sample = make_person()
    h, w = sample.size
    yy, xx = np.mgrid[0:h, 0:w]
    sample.image[..., 0], sample.image[..., 1] = yy + 1, xx + 1  # pixel coordinates encoded in the image
    for seed in range(5):
        out = RandomScaleCrop(1.0, 1.0, (24, 20), keep_person_fraction=0.3)(sample, np.random.default_rng(seed))
        assert out.size == (24, 20)
        y0, x0 = int(out.image[0, 0, 0]) - 1, int(out.image[0, 0, 1]) - 1
        window = (slice(y0, y0 + 24), slice(x0, x0 + 20))
        np.testing.assert_array_equal(out.image, sample.image[window])
        np.testing.assert_array_equal(out.semantic, sample.semantic[window])
        kept = [s for s in sample.segments if s.mask[window].any()]
        assert [s.category for s in out.segments] == [s.category for s in kept]  # empty ones dropped
        for s, t in zip(out.segments, kept):
            np.testing.assert_array_equal(s.mask, t.mask[window])
        assert seg_of(out, "person").sum() >= 0.3 * seg_of(sample, "person").sum()


def test_crop_larger_than_image_pads_with_ignore() -> None:
    sample = make_person(h=48, w=40)
    out = RandomScaleCrop(1.0, 1.0, (64, 50))(sample, np.random.default_rng(0))
    assert out.size == (64, 50)
    np.testing.assert_array_equal(out.image[:48, :40], sample.image)
    assert (out.image[48:] == 0).all() and (out.image[:, 40:] == 0).all()
    assert (out.semantic[48:] == IGNORE_ID).all() and (out.semantic[:, 40:] == IGNORE_ID).all()
    assert out.ignore[48:].all() and out.ignore[:, 40:].all() and not out.ignore[:48, :40].any()
    assert all(not s.mask[48:].any() and not s.mask[:, 40:].any() for s in out.segments)
    out.validate()


@pytest.mark.parametrize("seed", range(4))
def test_scale_crop_keeps_labels_aligned_with_image(seed: int) -> None:
    sample = make_person()
    before = copy.deepcopy(sample)
    transform = RandomScaleCrop(0.6, 1.8, (40, 36), keep_person_fraction=0.5)
    out = transform(sample, np.random.default_rng(seed)).validate()
    assert_same(sample, before)
    assert out.size == (40, 36)
    assert all(s.mask.any() for s in out.segments)
    assert_colours_aligned(out, radius=3, min_checked=20)


def test_scale_only_and_resize_longest_side() -> None:
    sample = make_person()
    out = RandomScaleCrop(0.5, 0.5)(sample, np.random.default_rng(0))
    assert out.size == (24, 20)
    big = ResizeLongestSide(96)(sample)
    assert big.size == (96, 80)
    for s, t in zip(big.segments, sample.segments):  # exact 2x nearest upsampling
        np.testing.assert_array_equal(s.mask, t.mask.repeat(2, 0).repeat(2, 1))
    np.testing.assert_array_equal(big.semantic, sample.semantic.repeat(2, 0).repeat(2, 1))
    assert_colours_aligned(big, radius=2)
    small = ResizeLongestSide(30)(sample)
    assert small.size == (30, 25)
    assert_colours_aligned(small, radius=2, min_checked=20)


# ---------------------------------------------------------------------------------------------
# colour jitter
# ---------------------------------------------------------------------------------------------


def test_color_jitter_changes_only_the_image() -> None:
    sample = make_person()
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    out = jitter(sample, np.random.default_rng(3))
    assert out.image.dtype == np.uint8 and out.image.shape == sample.image.shape
    assert not np.array_equal(out.image, sample.image)
    np.testing.assert_array_equal(out.semantic, sample.semantic)
    for s, t in zip(out.segments, sample.segments):
        assert s.category == t.category and s.person == t.person
        np.testing.assert_array_equal(s.mask, t.mask)
    # Reproducible with the same seed.
    np.testing.assert_array_equal(jitter(sample, np.random.default_rng(3)).image, out.image)


def test_hue_and_saturation_keep_greys_grey_and_hue_keeps_luma() -> None:
    sample = make_person()
    rng = np.random.default_rng(0)
    out = ColorJitter(saturation=0.8, hue=0.5)(sample, rng)
    grey = (sample.image == BACKGROUND).all(-1)
    np.testing.assert_array_equal(out.image[grey], sample.image[grey])
    hue_only = ColorJitter(hue=0.3)(sample, rng).image.astype(float)
    luma = np.array([0.299, 0.587, 0.114])
    coloured = ~grey
    unclipped = coloured & (hue_only > 0).all(-1) & (hue_only < 255).all(-1)
    assert unclipped.sum() > 50
    np.testing.assert_allclose(hue_only[unclipped] @ luma, sample.image[unclipped].astype(float) @ luma, atol=1.5)
    with pytest.raises(ValueError):
        ColorJitter(hue=0.7)


def test_compose_threads_the_generator() -> None:
    sample = make_person()
    pipeline = Compose([RandomHFlip(0.5), RandomScaleCrop(0.7, 1.3, (32, 32)), ColorJitter(0.2, 0.2, 0.2, 0.05)])
    a = pipeline(sample, np.random.default_rng(7))
    b = pipeline(sample, np.random.default_rng(7))
    assert_same(a, b)


# ---------------------------------------------------------------------------------------------
# copy-paste composites
# ---------------------------------------------------------------------------------------------


def test_remap_semantic_by_canonical_name() -> None:
    src = ["background", "Hair", "Glove", "Left-arm"]
    dst = ["background", "left arm", "hair"]
    sem = np.array([[0, 1, 2, 3, IGNORE_ID, 7]], np.int32)
    np.testing.assert_array_equal(remap_semantic(sem, src, dst), [[0, 2, IGNORE_ID, 1, IGNORE_ID, IGNORE_ID]])


def _people(sample: Sample) -> dict[int, np.ndarray]:
    return {s.person: s.mask for s in sample.segments if s.category == "person"}


def _check_composite(out: Sample) -> None:
    out.validate()
    people = _people(out)
    assert sorted(people) == list(range(len(people)))
    assert {s.person for s in out.segments} == set(people)
    assert all(m.any() for m in people.values())  # every person at least partly inside the canvas
    stack = np.stack(list(people.values())).astype(int)
    assert stack.sum(0).max() <= 1  # no pixel belongs to two people
    canon_to_id = {}
    for i, name in enumerate(out.classes):
        canon_to_id.setdefault(vocabulary.canonical_name(name), i)
    for seg in out.segments:
        assert seg.mask.any()
        assert not (seg.mask & ~people[seg.person]).any(), (seg.category, seg.person)  # part inside its person
        if seg.category != "person":
            expected = canon_to_id.get(seg.category, IGNORE_ID)
            assert (out.semantic[seg.mask] == expected).all(), seg.category
    assert out.has_instances


def test_composite_of_three_people() -> None:
    samples = [make_person(image_id="a"), make_person(top=2, left=4, image_id="b"),
               make_person(h=60, w=50, top=10, left=20, image_id="c")]
    before = copy.deepcopy(samples)
    composite = CopyPasteComposite(num_people=(3, 3), scale=(0.6, 1.0), min_visible=0.1)
    counts, occluded = [], 0
    for seed in range(12):
        out = composite(samples, np.random.default_rng(seed))
        _check_composite(out)
        assert out.image_id == "a+b+c" and out.size == samples[0].size and out.classes == CLASSES
        people = _people(out)
        counts.append(len(people))
        # Occlusion: the canvas person keeps exactly its pixels not covered by people pasted in front.
        original = seg_of(samples[0], "person")
        covered = np.logical_or.reduce([m for p, m in people.items() if p > 0] + [np.zeros_like(original)])
        if counts[-1] == 3:
            np.testing.assert_array_equal(people[0], original & ~covered)
            occluded += int(people[0].sum() < original.sum())
        # Visible part pixels still show that part's colours.
        assert_colours_aligned(out, radius=3, min_checked=10)
    assert 3 in counts and all(1 <= c <= 3 for c in counts)
    assert occluded > 0
    for s, b in zip(samples, before):
        assert_same(s, b)
    # Deterministic given the seed.
    assert_same(composite(samples, np.random.default_rng(5)), composite(samples, np.random.default_rng(5)))


def test_composite_remaps_pasted_classes_to_the_canvas() -> None:
    other = ["background", "Right-shoe", "Left-shoe", "Pants", "Hair", "Face", "Upper-clothes", "Left-arm",
             "Right-arm", "glove"]
    canvas = make_person(h=60, w=60, image_id="a")
    pasted = make_person(image_id="b", classes=other, extra="glove")
    composite = CopyPasteComposite(num_people=(2, 2), scale=(1.0, 1.0), min_inside=1.0, flip_p=0.0)
    out = composite([canvas, pasted], np.random.default_rng(1))
    _check_composite(out)
    front = max(_people(out))
    glove = seg_of(out, "gloves", front)
    assert (out.semantic[glove] == IGNORE_ID).all()  # no "glove" class in the canvas's list
    assert (out.semantic[seg_of(out, "left shoe", front)] == CLASSES.index("left-shoe")).all()


def test_mostly_hidden_person_is_dropped_and_its_remnant_ignored() -> None:
    canvas = make_person(h=40, w=40, top=0, left=8, image_id="back")
    front = make_person(h=40, w=40, image_id="front")
    body = np.ones((40, 40), bool)
    body[0:2, 10:30] = False  # a small hole over the canvas person's hair
    front.segments = [Segment("person", body, 0), Segment("dress", body.copy(), 0)]
    front.semantic = np.zeros((40, 40), np.int32)
    composite = CopyPasteComposite(num_people=(2, 2), scale=(1.0, 1.0), min_inside=1.0, min_visible=0.1, flip_p=0.0)
    out = composite([canvas, front], np.random.default_rng(0))
    people = _people(out)
    assert list(people) == [0]  # the canvas person (a sliver of hair visible) was dropped; front is now id 0
    np.testing.assert_array_equal(people[0], body)
    assert {s.category for s in out.segments} == {"person", "dress"}
    remnant = ~body & seg_of(canvas, "person")
    assert 0 < remnant.sum() < 0.1 * seg_of(canvas, "person").sum()
    np.testing.assert_array_equal(out.ignore, remnant)
    assert (out.semantic[remnant] == IGNORE_ID).all()


def test_composite_draws_people_count_within_bounds() -> None:
    samples = [make_person(image_id=str(i)) for i in range(4)]
    composite = CopyPasteComposite(num_people=(1, 3), min_visible=0.0)
    seen = set()
    for seed in range(20):
        out = composite(samples, np.random.default_rng(seed))
        seen.add(out.image_id.count("+") + 1)
        _check_composite(out)
    assert seen <= {1, 2, 3} and len(seen) >= 2
    single = composite(samples[:1], np.random.default_rng(0))
    assert single.image_id == "0" and len(_people(single)) == 1
