"""From Samples to model inputs: phrases, EBP prompts, captions, examples and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing.configs import ConfigError
from spectrum_parsing.data.sample import IGNORE_ID, Sample, Segment
from spectrum_parsing.data.targets import (
    EBP_PROMPTS,
    PROMPT_TEMPLATES,
    TargetConfig,
    ambiguous_phrases,
    caption_for,
    collate,
    make_example,
    phrase_for,
    semantic_to_canonical,
    templates_for,
    with_article,
    with_ebp,
)
from spectrum_parsing.vocab import categories as vocabulary

CLASSES = ["background", "hair", "face", "t-shirt", "pants", "left-shoe", "right-shoe", "bag", "coat", "sunglasses",
           "shoes", "left-hand", "hat"]


def _box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def make_sample(h: int = 40, w: int = 30, image_id: str = "s", tiny_bag: bool = False) -> Sample:
    """One person: hair, face, t-shirt, pants, shoes and a bag, with matching semantic ids."""
    parts = {
        "hair": (2, 5, 10, 20), "face": (5, 10, 10, 20), "t-shirt": (10, 22, 6, 24), "pants": (22, 34, 8, 22),
        "left-shoe": (34, 37, 15, 22), "right-shoe": (34, 37, 8, 15), "bag": (18, 19, 24, 25) if tiny_bag
        else (16, 24, 24, 29),
    }
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    semantic = np.zeros((h, w), np.int32)
    segments = []
    for name, box in parts.items():
        mask = _box(h, w, *box)
        semantic[mask] = CLASSES.index(name)
        segments.append(Segment(vocabulary.canonical_name(name), mask, 0))
    person = np.logical_or.reduce([s.mask for s in segments])
    return Sample(image=image, segments=[Segment("person", person, 0), *segments], semantic=semantic,
                  classes=list(CLASSES), image_id=image_id, dataset="toy").validate()


# ---------------------------------------------------------------------------------------------
# phrases
# ---------------------------------------------------------------------------------------------


def test_templates_and_phrases() -> None:
    for templates in PROMPT_TEMPLATES.values():
        assert all("{}" in t or "{a}" in t for t in templates)
    assert "a person wearing {a}" in templates_for("jeans")
    assert "a photo of a person's {}" in templates_for("left hand")
    assert "a person carrying {a}" in templates_for("bag")
    assert not any("wearing" in t for t in templates_for("left hand"))
    assert not any("woman" in t for t in templates_for("left upper leg"))
    assert with_article("t-shirt") == "a t-shirt" and with_article("overcoat") == "an overcoat"
    assert with_article("jeans") == "jeans" and with_article("hair") == "hair" and with_article("dress") == "a dress"

    assert phrase_for("left shoe") == "left shoe"  # no rng: the canonical name
    rng = np.random.default_rng(0)
    for name in vocabulary.names():
        cat = vocabulary.get(name)
        for _ in range(3):
            phrase = phrase_for(name, rng)
            assert "{" not in phrase and "}" not in phrase
            assert any(alias in phrase for alias in (cat.name, *cat.synonyms)), (name, phrase)
    a = [phrase_for("jeans", np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    assert len({phrase_for("t-shirt", rng) for _ in range(40)}) > 5


def test_ebp_adds_body_parts_without_duplicates() -> None:
    assert all(p in vocabulary.BY_NAME and vocabulary.get(p).kind == "body" for p in EBP_PROMPTS)
    assert {"left hand", "right foot", "torso", "hair"} <= set(EBP_PROMPTS)
    user = ["t-shirt", "Hair", "left hand", "hair", "jeans"]
    out = with_ebp(user)
    assert out[:4] == ["t-shirt", "Hair", "left hand", "jeans"]
    assert len(out) == len(set(out))
    assert "hair" not in out and out.count("left hand") == 1
    assert set(EBP_PROMPTS) - {"hair", "left hand"} <= set(out[4:])
    assert with_ebp(["head skin"])[1:] == [p for p in EBP_PROMPTS if p != "face"]  # synonym covers "face"
    assert with_ebp([]) == list(EBP_PROMPTS)


def test_caption() -> None:
    sample = make_sample()
    assert caption_for(sample) == "a photo of a person wearing a t-shirt, pants and shoes, with a bag"
    sample.segments = [s for s in sample.segments if s.category in ("person", "hair")]
    assert caption_for(sample) == "a photo of a person"
    two = make_sample()
    two.has_instances = True
    two.segments.append(Segment("person", two.segments[0].mask, 1))
    assert caption_for(two).startswith("a photo of two people wearing")


# ---------------------------------------------------------------------------------------------
# config and examples
# ---------------------------------------------------------------------------------------------


def test_target_config_round_trip_and_strict_keys() -> None:
    config = TargetConfig(withheld=["pants", "shoes"], num_negative_phrases=3, use_templates=False,
                          include_person=False, min_segment_pixels=5)
    assert TargetConfig.from_dict(config.to_dict()) == config
    assert TargetConfig.from_dict({}) == TargetConfig()
    with pytest.raises(ConfigError, match="num_negatives"):
        TargetConfig.from_dict({"num_negatives": 3})
    with pytest.raises(ConfigError, match="trousers"):
        TargetConfig(withheld=["trousers"])  # synonyms are not canonical names
    with pytest.raises(ConfigError):
        TargetConfig(withheld=["person"])
    with pytest.raises(ConfigError):
        TargetConfig(num_negative_phrases=-1)
    assert {"shoes", "left shoe", "right shoe"} <= TargetConfig(withheld=["shoes"]).withheld_set()


def test_make_example_withheld_become_ignored_not_background() -> None:
    sample = make_sample(tiny_bag=True)
    sample.ignore = _box(40, 30, 0, 1, 0, 30)
    config = TargetConfig(withheld=["shoes", "pants"], min_segment_pixels=2)
    ex = make_example(sample, config)
    assert ex.image.shape == (3, 40, 30) and ex.image.dtype == torch.float32
    assert float(ex.image.max()) <= 1.0 and float(ex.image.min()) >= 0.0
    torch.testing.assert_close(ex.image, torch.from_numpy(sample.image).permute(2, 0, 1).float() / 255)
    assert ex.categories == ["person", "hair", "face", "t-shirt"]  # shoes (descendants), pants and the 1-px bag gone
    assert ex.masks.dtype == torch.bool and ex.masks.shape == (4, 40, 30)
    seg = {s.category: s.mask for s in sample.segments}
    expected_ignore = sample.ignore | seg["pants"] | seg["left shoe"] | seg["right shoe"]
    np.testing.assert_array_equal(ex.ignore.numpy(), expected_ignore)
    np.testing.assert_array_equal(ex.masks[0].numpy(), seg["person"])  # the person mask itself is kept whole
    assert ex.label_space is not None and "pants" not in ex.label_space and "bag" in ex.label_space
    assert "left shoe" not in ex.label_space and "t-shirt" in ex.label_space
    assert sample.ignore.sum() == 30  # input untouched

    no_person = make_example(make_sample(), TargetConfig(include_person=False))
    assert "person" not in no_person.categories and no_person.ignore is None
    empty = make_sample()
    empty.segments = []
    assert make_example(empty, TargetConfig()).masks.shape == (0, 40, 30)


def test_skin_union_merges_each_persons_bare_body_into_one_skin_segment() -> None:
    sample = make_sample()
    h, w = sample.size
    arm, leftover = _box(h, w, 10, 20, 24, 28), _box(h, w, 30, 32, 0, 4)
    sample.segments += [Segment("left arm", arm, 0), Segment("skin", leftover, 0),
                        Segment("face", _box(h, w, 0, 3, 0, 3), 1)]
    ex = make_example(sample, TargetConfig(skin_union=True))
    skins = [(p, m) for c, p, m in zip(ex.categories, ex.persons, ex.masks) if c == "skin"]
    assert sorted(p for p, _ in skins) == [0, 1]  # one per person, the person's own leftover skin replaced
    face = next(s.mask for s in sample.segments if s.category == "face" and s.person == 0)
    union = dict(skins)[0].numpy()
    np.testing.assert_array_equal(union, face | arm | leftover)
    assert "face" in ex.categories and "left arm" in ex.categories  # the parts stay
    plain = make_example(sample, TargetConfig())
    assert plain.categories.count("skin") == 1  # off: the dataset's own skin only
    # Hair and clothes are never skin; neither are PASCAL-style parts that include clothing.
    sample.segments = [s for s in sample.segments if s.category in ("person", "hair", "t-shirt")]
    sample.segments.append(Segment("upper arm", arm, 0))
    assert "skin" not in make_example(sample, TargetConfig(skin_union=True)).categories


def test_training_phrases_cover_every_phrase_training_draws() -> None:
    from spectrum_parsing.vocab.phrases import training_phrases

    phrases = set(training_phrases())
    rng = np.random.default_rng(0)
    for cat in vocabulary.CATEGORIES:
        assert cat.name in phrases
        for _ in range(30):
            assert phrase_for(cat.name, rng) in phrases


# ---------------------------------------------------------------------------------------------
# collate
# ---------------------------------------------------------------------------------------------


def test_collate_pads_and_maps_labels() -> None:
    a = make_sample(40, 30, "a")
    b = make_sample(45, 70, "b")
    b.segments = [s for s in b.segments if s.category != "bag"]
    b.segments.append(Segment("sunglasses", _box(45, 70, 6, 8, 10, 20), 0))
    config = TargetConfig(use_templates=False)
    examples = [make_example(a, config), make_example(b, config)]
    batch = collate(examples, config, np.random.default_rng(0))
    assert batch["images"].shape == (2, 3, 64, 96)
    assert batch["image_sizes"] == [(40, 30), (45, 70)]
    assert batch["image_ids"] == ["a", "b"]
    assert batch["categories"] == ["person", "hair", "face", "t-shirt", "pants", "left shoe", "right shoe", "bag",
                                   "sunglasses"]
    assert batch["phrases"] == batch["categories"]  # no templates: canonical names
    torch.testing.assert_close(batch["images"][0, :, :40, :30], examples[0].image)
    assert float(batch["images"][0, :, 40:].abs().sum()) == 0 and float(batch["images"][0, :, :, 30:].abs().sum()) == 0
    for ex, target, (h, w) in zip(examples, batch["targets"], batch["image_sizes"]):
        assert target["labels"].dtype == torch.long
        assert [batch["categories"][i] for i in target["labels"].tolist()] == ex.categories
        assert target["masks"].shape == (len(ex.categories), 64, 96) and target["masks"].dtype == torch.bool
        assert torch.equal(target["masks"][:, :h, :w], ex.masks)
        assert not target["masks"][:, h:].any() and not target["masks"][:, :, w:].any()
        assert target["ignore"].shape == (64, 96) and target["ignore"].dtype == torch.bool
        assert target["ignore"][h:].all() and target["ignore"][:, w:].all() and not target["ignore"][:h, :w].any()
    # The same category maps to the same phrase index in both images.
    la, lb = (t["labels"].tolist() for t in batch["targets"])
    assert la[:5] == lb[:5]


def test_collate_templates_and_negatives_never_use_withheld() -> None:
    config = TargetConfig(withheld=["pants", "hat"], num_negative_phrases=500, use_templates=True)
    examples = [make_example(make_sample(image_id=str(i)), config) for i in range(2)]
    batch = collate(examples, config, np.random.default_rng(1))
    present = ["person", "hair", "face", "t-shirt", "left shoe", "right shoe", "bag"]
    assert batch["categories"][:7] == present
    negatives = batch["categories"][7:]
    # Annotated by the dataset, absent and unrelated to what is present: coat, sunglasses, left hand. Not pants
    # and hat (withheld), nor shoes (parent of "left shoe").
    assert sorted(negatives) == ["coat", "left hand", "sunglasses"]
    assert len(batch["phrases"]) == len(set(batch["phrases"])) == len(batch["categories"])
    assert not {vocabulary.canonical_name(p) for p in batch["phrases"]} & config.withheld_set()
    # Without a label space (unknown dataset), negatives come from the whole vocabulary.
    for ex in examples:
        ex.label_space = None
    wide = collate(examples, config, np.random.default_rng(1))["categories"][7:]
    assert "jacket" in wide and "left upper leg" in wide
    assert not set(wide) & (config.withheld_set() | set(present))
    assert not {"shoes", "sneakers", "boots", "person", "skin"} & set(wide)  # the shoes seen may be sneakers
    # Reproducible.
    again = collate(examples, config, np.random.default_rng(1))
    assert again["phrases"] == collate(examples, config, np.random.default_rng(1))["phrases"]


def test_ambiguous_phrases_follow_what_each_dataset_annotates() -> None:
    from spectrum_parsing.data.targets import _label_space

    lip = _label_space(["background", "hat", "hair", "upper-clothes", "pants", "face", "left-arm", "left-shoe",
                        "right-shoe", "coat"])
    ccp = _label_space(["null", "t-shirt", "jeans", "pants", "skin", "hair", "sneakers", "shoes", "jacket"])
    batch = ["pants", "jeans", "t-shirt", "upper clothes", "left arm", "skin", "hair", "sneakers", "left shoe",
             "right shoe", "person", "coat", "jacket"]

    def amb(category: str, space: list[str] | None) -> set[str]:
        return {c for c, a in zip(batch, ambiguous_phrases(category, space, batch)) if a}

    # LIP's "pants" may be jeans; its "upper clothes" any top; its "left shoe" a sneaker (and "shoes" its parent).
    assert amb("pants", lip) == {"jeans"}
    assert amb("upper clothes", lip) == {"t-shirt"}
    assert amb("left shoe", lip) == {"sneakers"}  # the right shoe stays a sure negative
    assert amb("left arm", lip) == {"skin"}
    assert amb("coat", lip) == {"jacket"}
    # CCP tells pants from jeans, but not a left arm from skin; "upper clothes" (broad) never competes.
    assert amb("jeans", ccp) == set()
    assert amb("t-shirt", ccp) == {"upper clothes"}
    assert amb("skin", ccp) == {"left arm"}
    assert amb("sneakers", ccp) == {"left shoe", "right shoe"}
    assert amb("hair", ccp) == amb("hair", lip) == set()
    assert amb("pants", None) == set()
    # collate carries it per target, aligned with the phrases.
    config = TargetConfig(use_templates=False)
    examples = [make_example(make_sample(), config)]
    batch_ = collate(examples, config, np.random.default_rng(0))
    for target, ex in zip(batch_["targets"], examples):
        assert target["ambiguous"].shape == (len(ex.categories), len(batch_["categories"]))
        assert not target["ambiguous"][torch.arange(len(ex.categories)), target["labels"]].any()


def test_finer_names_make_a_broad_name_the_dataset_annotates_a_negative() -> None:
    from spectrum_parsing.data.targets import _label_space

    ccp = _label_space(["null", "skin", "sneakers", "boots", "shoes", "watch", "accessories", "t-shirt"])
    lip = _label_space(["background", "face", "left-arm", "left-shoe", "right-shoe", "upper-clothes"])
    batch = ["shoes", "sneakers", "boots", "left shoe", "accessories", "watch", "skin", "face", "upper clothes",
             "t-shirt"]

    def amb(category: str, space: list[str], finer: bool) -> set[str]:
        return {c for c, a in zip(batch, ambiguous_phrases(category, space, batch, finer)) if a}

    # CCP chose "sneakers" over its own "shoes": with finer names the broad one is pushed down ...
    assert "shoes" in amb("sneakers", ccp, False)
    assert amb("sneakers", ccp, True) == {"left shoe"}  # a sided shoe may still be a sneaker
    assert amb("watch", ccp, False) == {"accessories"} and amb("watch", ccp, True) == set()
    # ... but not a broad body category (a face is skin), nor a broad name the dataset does not annotate,
    # nor a parent ("shoes" for a LIP left shoe), and the rule changes nothing for the broad segment itself.
    assert amb("skin", ccp, True) == amb("skin", ccp, False) == {"face"}
    assert amb("t-shirt", ccp, True) == {"upper clothes"}
    assert amb("left shoe", lip, True) == amb("left shoe", lip, False)
    assert amb("shoes", ccp, True) == amb("shoes", ccp, False)
    # collate passes the config's choice on to every target.
    sample = make_sample()
    for finer, expected in ((False, True), (True, False)):
        config = TargetConfig(use_templates=False, finer_names=finer)
        example = make_example(sample, config)
        example.label_space = ccp
        example.categories = ["sneakers", "shoes"]
        example.masks = example.masks[:2]
        batch_ = collate([example], config, np.random.default_rng(0))
        row = batch_["targets"][0]["ambiguous"][0]
        assert bool(row[batch_["categories"].index("shoes")]) is expected


def test_collated_batch_feeds_the_criterion() -> None:
    from spectrum_parsing.losses import LossConfig, SpectrumCriterion

    config = TargetConfig(withheld=["pants"], num_negative_phrases=2)
    batch = collate([make_example(make_sample(), config), make_example(make_sample(33, 50), config)], config,
                    np.random.default_rng(0))
    torch.manual_seed(0)
    num_prompts = len(batch["phrases"])
    hp, wp = batch["images"].shape[-2:]
    outputs = {"pred_logits": torch.randn(2, 6, num_prompts + 1), "pred_masks": torch.randn(2, 6, hp // 4, wp // 4)}
    losses = SpectrumCriterion(LossConfig(num_points=64))(outputs, batch["targets"])
    assert torch.isfinite(losses["loss"])


def test_semantic_to_canonical() -> None:
    sample = make_sample()
    sample.classes = [c if c != "bag" else "mystery" for c in CLASSES]  # no canonical equivalent for id 7
    sample.semantic[0, 0] = IGNORE_ID
    labels, names = semantic_to_canonical(sample)
    assert names == ["hair", "face", "t-shirt", "pants", "left shoe", "right shoe", "coat", "sunglasses", "shoes",
                     "left hand", "hat"]
    assert labels.dtype == np.int32
    seg = {s.category: s.mask for s in sample.segments}
    assert (labels[seg["left shoe"]] == names.index("left shoe") + 1).all()
    assert (labels[seg["bag"]] == IGNORE_ID).all()
    assert labels[0, 0] == IGNORE_ID and labels[0, 1] == 0
