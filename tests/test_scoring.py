"""What a top-down parse scores (:mod:`spectrum_parsing.scoring`): hidden competitors keep absent prompts empty,
and the plan reads categories inside free phrases; with a fake parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.processor import ImagePrediction, SpectrumImageProcessor
from spectrum_parsing.scoring import competitor_phrases, novel_prompts, plan_prompts
from spectrum_parsing.topdown import TopDownConfig, parse_top_down


def test_competitors_keep_an_absent_prompt_empty():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    prompts = ["saree", "person"]
    pool = competitor_phrases(["saree"], ["pants", "shirt", "dress", "saree", "face", "person"])
    assert "pants" in pool and "face" in pool and "dress" not in pool and "person" not in pool  # same group out
    plan = plan_prompts(prompts, competitors=pool)
    assert plan.prompts[-1] == "(competitors)" and plan.scored[-len(pool):] == pool
    assert plan.pooled == list(range(2, 2 + len(pool)))

    def predict(crops):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[plan.prompts.index("saree"), 20:50] = 0.6  # the parser half-believes trousers are a saree
        scores[-1, 20:50] = 0.8  # ... but "pants" (pooled) believes it more
        scores[plan.prompts.index("saree"), 5:15] = 0.7  # and nothing competes here
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1)
    persons, semantic = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan, 1, config)
    (saree,) = persons[0].parts
    assert saree.label == "saree" and saree.area == 10 * w  # only the rows nothing else claims
    assert int(semantic.max()) == 1


def test_novel_competitors_contest_only_the_phrases_the_model_never_saw_as_labels():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    prompts = ["saree", "pants", "blazer", "person"]
    assert novel_prompts(prompts) == [0]  # a synonym of dress; "blazer" (withheld in training) is a category name
    assert novel_prompts(["Upper-clothes", "left_shoe", "red dress", "zebra"]) == [2, 3]
    plan = plan_prompts(prompts, competitors=["shirt", "coat"], contested=[0])
    rival = plan.prompts.index("(competitors)")

    def predict(crops):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[0, 0:20] = 0.4  # "saree" where the pool is far surer: lost
        scores[0, 20:30] = 0.7  # "saree" where the pool is less sure: kept
        scores[1, 30:38] = 0.6  # "pants" is not contested, even where the pool is surer (fewer pixels than the
        # saree: trousers holding as many would make it the parser's mistake, SYNONYM_VOTE)
        scores[rival, 0:20] = 0.8
        scores[rival, 20:30] = 0.5
        scores[rival, 30:60] = 0.9
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)
    persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan, 3, config)
    areas = {p.label: p.area for p in persons[0].parts}
    assert areas == {"saree": 10 * w, "pants": 8 * w}
    assert TopDownConfig().competitors == "novel" and TopDownConfig(competitors=True).competitors == "all"
    with pytest.raises(ValueError, match="competitors"):
        TopDownConfig(competitors="some")


def test_a_region_the_competitors_barely_contest_stays_whole():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    plan = plan_prompts(["gown", "person"], competitors=["shirt", "coat"], contested=[0])
    rival = plan.prompts.index("(competitors)")

    def predict(crops, edge):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[0, 10:50] = 0.6  # one region "gown" claims ...
        scores[rival, 10:50] = 0.5
        scores[rival, 10:20] = edge  # ... whose top rows the competitors edge out
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)

    def gown_area(edge):
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, lambda c: predict(c, edge), plan, 1,
                                    config)
        return {p.label: p.area for p in persons[0].parts}.get("gown", 0)

    assert gown_area(0.7) == 40 * w  # competitors about as sure on the whole region: kept whole (a worn dress)
    assert gown_area(4.0) == 30 * w  # clearly surer on the whole (mean ratio > 1.3): they take the rows they win


def test_pooled_competitors_sum_the_garments_that_split_one_score():
    plan = plan_prompts(["saree", "person"], competitors=["shirt", "coat", "pants", "hat"], contested=[0])
    shirt, coat, pants, hat = plan.pooled
    assert plan.pool_groups == [[shirt, coat], [pants], [hat]]  # upper-body clothes and outerwear pool together
    # the processor scores the pooled column as the best group sum: shirt + coat (0.3 + 0.3) beat pants (0.5)
    logits = torch.full((4, len(plan.scored) + 1), -30.0)
    for query, column in enumerate((shirt, coat, pants, hat)):
        logits[query, column] = 0.0
    masks = torch.full((4, 2, 2), 30.0)
    prediction = ImagePrediction(logits, masks, (8, 8), (8, 8))
    weights = torch.tensor([0.3, 0.3, 0.5, 0.2])
    prediction.logits[:, -1] = torch.log(1 / weights - 1)  # each query's no-object share leaves it ``weights``
    scores = SpectrumImageProcessor(64).semantic_scores(prediction, plan.pool_groups)
    assert scores.shape[0] == len(plan.prompts)
    assert torch.allclose(scores[-1], torch.full((8, 8), 0.6), atol=1e-4)
    flat = SpectrumImageProcessor(64).semantic_scores(prediction, plan.pooled)  # ungrouped: the best single one
    assert torch.allclose(flat[-1], torch.full((8, 8), 0.5), atol=1e-4)


def test_competitor_phrases_read_the_category_inside_free_phrases():
    candidates = ["dress", "pants", "shirt", "hat", "heels", "face"]
    assert "dress" not in competitor_phrases(["red summer dress"], candidates)
    assert "heels" not in competitor_phrases(["high heels"], candidates)  # footwear group
    assert set(competitor_phrases(["zebra"], candidates)) == set(candidates)  # unknown: everything competes
