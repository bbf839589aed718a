from __future__ import annotations

import pytest
import torch

import spectrum_parsing.postprocess as pp
from spectrum_parsing.postprocess import group_instances
from spectrum_parsing.results import mask_box

PROMPTS = ["person", "shirt", "hand", "pants"]
H, W = 20, 40


def _rect(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    m = torch.zeros(H, W, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def _scene():
    """Hand-built scene: (pred_logits, pred_masks, name of each query)."""
    queries = [
        # name,            prompt,  logit, mask
        ("person_a", 0, 10.0, _rect(2, 18, 2, 15)),
        ("person_b", 0, 6.0, _rect(2, 18, 22, 35)),
        ("person_a_dup", 0, 3.0, _rect(2, 17, 2, 15)),  # IoU 15/16 with person_a
        ("shirt_a", 1, 9.0, _rect(5, 10, 4, 12)),
        ("shirt_a_dup", 1, 4.0, _rect(5, 11, 4, 12)),  # IoU 5/6 with shirt_a
        ("shirt_b", 1, 8.0, _rect(5, 10, 24, 32)),
        ("shirt_chair", 1, 10.0, _rect(5, 10, 16, 21)),  # between the persons, on a chair
        ("shirt_edge", 1, 10.0, _rect(5, 10, 12, 21)),  # only 3/9 of it inside person_a
        ("hand_left", 2, 7.0, _rect(12, 14, 2, 5)),
        ("hand_right", 2, 5.0, _rect(12, 14, 12, 17)),  # 3/5 inside person_a, kept unclipped
        ("weak_pants", 3, 0.5, _rect(12, 18, 22, 35)),  # low probability: filtered out
        ("empty", -1, 8.0, torch.zeros(H, W, dtype=torch.bool)),  # no-object query
    ]
    logits = torch.zeros(len(queries), len(PROMPTS) + 1)
    masks = torch.empty(len(queries), H, W)
    for q, (_, prompt, value, mask) in enumerate(queries):
        logits[q, prompt] = value  # prompt -1 is the no-object column
        masks[q] = torch.where(mask, 8.0, -8.0)
    return logits, masks, [q[0] for q in queries]


def test_mask_box() -> None:
    assert mask_box(torch.zeros(5, 6, dtype=torch.bool)) == (0, 0, 0, 0)
    assert mask_box(_rect(3, 7, 10, 12)) == (10, 3, 12, 7)
    single = torch.zeros(4, 4, dtype=torch.bool)
    single[2, 1] = True
    assert mask_box(single) == (1, 2, 2, 3)


def test_group_instances_hand_built_scene() -> None:
    logits, masks, _ = _scene()
    persons = group_instances(logits, masks, PROMPTS, person_index=0)

    # Duplicate person removed; ids follow descending score.
    assert [p.id for p in persons] == [0, 1]
    assert persons[0].score > persons[1].score
    assert torch.equal(persons[0].mask, _rect(2, 18, 2, 15))
    assert torch.equal(persons[1].mask, _rect(2, 18, 22, 35))
    assert persons[0].box == (2, 2, 15, 18)
    assert persons[1].box == (22, 2, 35, 18)

    a_parts = persons[0].parts
    assert [p.label for p in a_parts] == ["shirt", "hand", "hand"]  # sorted by score
    assert [p.score for p in a_parts] == sorted((p.score for p in a_parts), reverse=True)
    assert torch.equal(a_parts[0].mask, _rect(5, 10, 4, 12))  # the higher-scored shirt survives
    # Both hands are kept; the right hand keeps the columns that stick out of the person.
    assert {p.box for p in a_parts[1:]} == {(2, 12, 5, 14), (12, 12, 17, 14)}
    assert all(p.prompt_index == 2 for p in a_parts[1:])

    b_parts = persons[1].parts
    assert [(p.label, p.prompt_index, p.box) for p in b_parts] == [("shirt", 1, (24, 5, 32, 10))]

    # Neither the chair shirt nor the barely overlapping one nor the weak pants belong to anybody.
    all_boxes = {p.box for person in persons for p in person.parts}
    assert (16, 5, 21, 10) not in all_boxes and (12, 5, 21, 10) not in all_boxes
    for person in persons:
        for part in person.parts:
            assert part.mask.dtype == torch.bool and part.mask.shape == (H, W)
            assert 0.3 <= part.score <= 1.0


def test_group_instances_scores_follow_mask2former() -> None:
    logits, masks, names = _scene()
    persons = group_instances(logits, masks, PROMPTS, person_index=0)
    q = names.index("person_b")
    prob = logits[q].softmax(-1)[0]
    quality = torch.sigmoid(torch.tensor(8.0))
    assert persons[1].score == pytest.approx(float(prob * quality), rel=1e-5)


def test_group_instances_thresholds_and_limits() -> None:
    logits, masks, _ = _scene()
    # A lenient overlap threshold lets the edge shirt join person A (deduped against nothing).
    persons = group_instances(logits, masks, PROMPTS, person_index=0, min_part_overlap=0.3)
    assert (12, 5, 21, 10) in {p.box for p in persons[0].parts}
    # max_instances keeps only the top (query, prompt) pairs: the three logit-10 queries.
    persons = group_instances(logits, masks, PROMPTS, person_index=0, max_instances=3)
    assert len(persons) == 1 and persons[0].parts == []
    # No person above threshold -> nothing.
    assert group_instances(logits, masks, PROMPTS, person_index=3) == []


def test_group_instances_requires_person_prompt() -> None:
    logits, masks, _ = _scene()
    with pytest.raises(ValueError, match="person"):
        group_instances(logits, masks, PROMPTS, person_index=None)
    with pytest.raises(ValueError):
        group_instances(logits, masks, PROMPTS[:3], person_index=0)


def test_pairwise_intersections_chunked_match_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 9, 7, generator=g) > 0.5
    b = torch.rand(3, 9, 7, generator=g) > 0.3
    expected = torch.tensor([[int((x & y).sum()) for y in b] for x in a])
    monkeypatch.setattr(pp, "_INTERSECT_CHUNK_ELEMENTS", 20)  # one row per chunk
    assert torch.equal(pp._pairwise_intersections(a, b), expected)


def test_returned_masks_do_not_alias() -> None:
    logits, masks, _ = _scene()
    persons = group_instances(logits, masks, PROMPTS, person_index=0)
    persons[0].parts[0].mask.zero_()
    again = group_instances(logits, masks, PROMPTS, person_index=0)
    assert persons[0].mask.any() and again[0].parts[0].mask.any()
    assert persons[0].mask.data_ptr() != persons[0].parts[0].mask.data_ptr()
