"""MoveNet-MultiPose as a :class:`~.types.PersonDetector`: up to 6 people per pass, tiles for crowds and
panoramas, a larger pass for far people, the acceptance rule that keeps garments on a bed out, keypoint NMS."""

from __future__ import annotations

import copy
import dataclasses
import math
import os

import numpy as np
import torch
from torch.nn import functional as F

from .tfgraph import GraphSpec, TFGraphModule, load_graph_model
from .types import WEIGHTS_DIR, PersonDetections, nms, nms_oks
from .verifier import DEFAULT_DIR as DEFAULT_VERIFIER
from .verifier import PersonVerifier

__all__ = ["MoveNetDetector", "accept_people", "accepted_mask", "box_coverage", "occluded_mask", "wide_decoding"]

MOVENET_SLOTS = 6
"""People MoveNet-MultiPose's own decoding reports per pass (its graph keeps the 6 highest peaks of the centre
heatmap): the crowd rules below were measured on these 6 candidates."""

_PREFIX = "StatefulPartitionedCall/"
_JOINTS = 17
HEADS = tuple(_PREFIX + name for name in (
    "center_0/conv2d_4/BiasAdd", "kpt_heatmap_0/conv2d_7/BiasAdd", "kpt_regress_0/conv2d_8/BiasAdd",
    "kpt_offset_0/conv2d_9/BiasAdd", "box_scale_0/conv2d_5/BiasAdd", "box_offset_0/conv2d_6/BiasAdd"))
"""The network's six output maps (centre heatmap, keypoint heatmaps, keypoint regression and offsets, box scale and
offset), which MoveNet's decoding reads and nothing else."""
_PEAKS = _PREFIX + "TopKV2"
"""MoveNet's six highest centre peaks (a person's score is at most its peak)."""


def wide_decoding(graph: TFGraphModule, count: int) -> TFGraphModule:
    """MoveNet-MultiPose's own decoding of ``count`` people instead of 6, as a graph whose inputs are the network's
    output maps (:data:`HEADS`) and whose output is the (1, ``count``, 56) detections tensor. The decoding keeps the
    highest peaks of the centre heatmap (``TopKV2``) and decodes each one's box and keypoints with shapes written for
    6 people; those constants are rewritten. The first six people it decodes are MoveNet's own but for their
    keypoint scores (each the highest of every candidate's distance-weighted heatmap at the keypoint, so more
    candidates raise them): :class:`MoveNetDetector` keeps MoveNet's six as they are and takes only the rest from
    here. ValueError for a graph without that decoding."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    output = graph.spec.outputs.get("output_0", "Identity")
    names = dict(graph._const_names)  # TF node name -> buffer name
    if _PREFIX + "TopKV2/k" not in names or not set(HEADS) <= {n["name"] for n in graph.spec.nodes}:
        raise ValueError("not MoveNet-MultiPose's graph (no TopKV2/k or output maps)")
    heads, decoded = graph._needed(list(HEADS)), graph._needed([output])
    nodes = [n for n in graph.spec.nodes if n["name"] in decoded and n["name"] not in heads]
    read = {str(i).split(":")[0] for n in nodes for i in n["inputs"]}
    new = {
        "TopKV2/k": count,
        "Reshape_10/shape": [count, 1], "Reshape_11/shape": [count, 1],
        **{f"Reshape_{i}/shape": [1, 1, count] for i in (12, 13, 14, 15)},
        "Reshape_16/shape": [-1, _JOINTS * count], "Reshape_18/shape": [1, count, _JOINTS, 2],
        "Reshape_20/shape": [1, count, _JOINTS], "Reshape_22/shape": [1, count, -1], "Reshape_3": [0] * count,
        "Reshape_6/shape": [1, count, 2], "Reshape_7/shape": [1, count, 2], "Reshape_9/shape": [count, _JOINTS, 2],
        "Reshape_17": list(range(_JOINTS)) * count, "Reshape_19": list(range(_JOINTS)) * count,
    }
    tensors = {name: getattr(graph, key) for name, key in names.items() if name in read}
    for short, value in new.items():
        name = _PREFIX + short
        if name not in tensors:
            raise ValueError(f"not MoveNet-MultiPose's graph (no {short})")
        tensors[name] = torch.tensor(value, dtype=tensors[name].dtype)
    zeros = _PREFIX + "zeros_like"
    if zeros not in tensors:
        raise ValueError("not MoveNet-MultiPose's graph (no zeros_like)")
    tensors[zeros] = torch.zeros(1, count, _JOINTS, dtype=tensors[zeros].dtype)
    spec = GraphSpec(inputs=list(HEADS), outputs={"output_0": output}, nodes=nodes)
    device = next(iter(graph.buffers())).device
    return TFGraphModule.from_tensors(spec, tensors).to(device).eval()


def _tiles(height: int, width: int, full: bool) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1): along the long side of a very elongated image (each tile about
    1.25x as long as the short side, 25% overlap), and 2x2 tiles of 60% of each side when a pass was full."""
    tiles = []
    long_side, short_side = max(height, width), min(height, width)
    if long_side > 2 * short_side and short_side >= 64:  # a strip thinner than 64 px holds no findable person
        size = max(min(long_side, int(1.25 * short_side)), long_side // 8)  # at most about 10 tiles
        count = math.ceil((long_side - size) / (0.75 * size)) + 1
        starts = np.linspace(0, long_side - size, count).round().astype(int)
        for s in starts:
            tiles.append((int(s), 0, int(s) + size, height) if width >= height else (0, int(s), width, int(s) + size))
    if full:
        th, tw = math.ceil(height * 0.6), math.ceil(width * 0.6)
        tiles += [(x0, y0, x0 + tw, y0 + th) for y0 in (0, height - th) for x0 in (0, width - tw)]
    return tiles


def box_coverage(boxes: np.ndarray, height: int, width: int, grid: int = 64) -> float:
    """The share of an image ``height`` x ``width`` covered by the union of ``boxes`` (x0, y0, x1, y1), on a
    ``grid`` x ``grid`` raster."""
    covered = np.zeros((grid, grid), dtype=bool)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        c0, c1 = (np.clip([x0 / width, x1 / width], 0, 1) * grid).round().astype(int)
        r0, r1 = (np.clip([y0 / height, y1 / height], 0, 1) * grid).round().astype(int)
        covered[r0:r1, c0:c1] = True
    return float(covered.mean())


CROWD_SCORE = 0.03
"""The sixth candidate's score of a crowded photo (:meth:`MoveNetDetector._crowded`): on the 467 unworn-garment
photos it stays below 0.01 (99th percentile 0.002), on the 25 `lip_dev` photos below 0.02 but for a crowd scene
(0.09), on CCP val composites of 3-11 people 0.03-0.18 (``benchmarks/bench_detectors.py``)."""
EXTRA_HINT = 0.02
"""The larger passes run only when the native pass left a candidate scored at least this unaccepted: MoveNet at
256 px gives a far person it cannot resolve a weak candidate (0.04 or more wherever the 512-px pass found someone
on cihp_dev, the 40 CCP val composites and lip_dev), and a lone sitter only noise (the bundled selfie's best other
candidate 0.006, the dancers' 0.01), sparing them a pass that costs 4x the native one."""
CROWD_UNSURE = 2
"""Candidates a crowded native pass did not accept, at least: the bundled group photo (five people found, a sixth
candidate at 0.036) is not tiled (its detector time would grow 5x for no one more)."""

BORDER_SCORE = 0.1
"""The person score that suffices for a person cut by the frame (head and shoulders seen, ``border_keypoints``
sure): less of the body is seen, so MoveNet is less sure of the centre (a man cut by `cihp_dev` photo 1's edge
scores 0.13). At 0.1 `cihp_dev` recall 76.5% -> 82.4% with nothing else changed; at 0.07 the composites' exact
count drops (``benchmarks/bench_detectors.py``)."""

BORDER_MARGIN = 0.02
"""A box within this share of the image's side from an edge touches the border (the person is cut by the frame)."""


OCCLUDED_SCORE = 0.08
"""Person score that suffices, with :data:`OCCLUDED_KEYPOINTS`, for a person partly hidden by others in a photo
where someone was found by the full rule (:func:`occluded_mask`). Chosen on CCP val composites on person-free
photos, whose truth holds everyone in the image (``benchmarks/bench_detectors.py``; 100 of them, the detector
alone, exact count / recall / precision): 0.14 with 5 keypoints 31.0% / 68.5% / 96.1%, 0.10 with 5 33.0% / 70.4%
/ 95.5%, 0.08 with 4 35.0% / 71.3% / 95.1%, 0.06 or 0.04 with 4 no better. On the street canvas, whose passers-by
the truth does not hold, the lower scores had looked costlier than they are."""

OCCLUDED_KEYPOINTS = 4
"""Confident keypoints that suffice for such a person (head and shoulders not required: a person behind another
is often seen from the waist down or from the side; 3 gained 0.9 points of recall for 0.7 of precision)."""


def occluded_mask(dets: PersonDetections, score_threshold: float = OCCLUDED_SCORE,
                  min_keypoints: int = OCCLUDED_KEYPOINTS, keypoint_threshold: float = 0.3) -> np.ndarray:
    """Bool per detection: enough evidence for a person partly hidden by others (person score >=
    ``score_threshold`` and at least ``min_keypoints`` keypoints scored >= ``keypoint_threshold``), which
    :class:`MoveNetDetector` asks only in a photo where someone was found by :func:`accepted_mask` (a garment
    photo has nobody to hide behind)."""
    confident = dets.keypoints[..., 2] >= keypoint_threshold
    return (dets.scores >= score_threshold) & (confident.sum(1) >= min_keypoints)


def accept_people(dets: PersonDetections, score_threshold: float, min_keypoints: int,
                  keypoint_threshold: float = 0.3, size: tuple[int, int] | None = None,
                  border_keypoints: int | None = None, border_score_threshold: float | None = None
                  ) -> PersonDetections:
    """The detections :class:`MoveNetDetector` keeps (order kept): :func:`accepted_mask`'s."""
    return dets.select(np.nonzero(accepted_mask(dets, score_threshold, min_keypoints, keypoint_threshold, size,
                                                border_keypoints, border_score_threshold))[0])


def accepted_mask(dets: PersonDetections, score_threshold: float, min_keypoints: int,
                  keypoint_threshold: float = 0.3, size: tuple[int, int] | None = None,
                  border_keypoints: int | None = None, border_score_threshold: float | None = None
                  ) -> np.ndarray:
    """Bool per detection, whether :class:`MoveNetDetector` keeps it: person score >= ``score_threshold`` and at
    least ``min_keypoints`` keypoints scored >= ``keypoint_threshold``. With the image ``size`` (H, W)
    and ``border_keypoints``, a person whose box touches the border (cut by the frame) needs only that many, when
    they include a shoulder and two head keypoints (head and shoulders: a garment on a bed has neither), and with
    ``border_score_threshold`` such a person needs only that person score."""
    confident = dets.keypoints[..., 2] >= keypoint_threshold
    cut = np.zeros(len(dets), dtype=bool)  # people cut by the frame, head and shoulders seen
    if size is not None and border_keypoints is not None and len(dets):
        h, w = size
        b = dets.boxes
        touches = ((b[:, 0] <= BORDER_MARGIN * w) | (b[:, 1] <= BORDER_MARGIN * h)
                   | (b[:, 2] >= (1 - BORDER_MARGIN) * w) | (b[:, 3] >= (1 - BORDER_MARGIN) * h))
        head_and_shoulders = (confident[:, :5].sum(1) >= 2) & confident[:, 5:7].any(1)
        cut = touches & head_and_shoulders & (confident.sum(1) >= border_keypoints)
    sure = dets.scores >= score_threshold
    if border_score_threshold is not None:
        sure |= cut & (dets.scores >= border_score_threshold)
    return sure & ((confident.sum(1) >= min_keypoints) | cut)


class MoveNetDetector:
    """MoveNet-MultiPose as a :class:`PersonDetector` (no I/O in the constructor: give it the ported graph, or
    use :meth:`from_pretrained`).

    ``input_size``: the long side the image is resized to (a multiple of 32; 256 is MoveNet's native size and
    measured best: 320-448 found fewer of the right counts). A detection needs a person score of at least
    ``score_threshold`` *and* at least ``min_keypoints`` keypoints scored >= ``keypoint_threshold``: MoveNet
    gives garments lying on a bed person scores up to 0.34 but never more than 6 confident keypoints, while
    people score 0.24-0.56 with 5-16 (``benchmarks/bench_persons.py``). ``border_keypoints``: a person whose
    box touches the image border (cut by the frame) needs only that many, head and shoulders among them.
    ``extra_sizes``: more passes at these long sides (default one at 512), which add only small people (at most
    ``extra_max_share`` of the image's height, scored >= ``extra_score_threshold``): far people the native pass
    misses; they are skipped when the people the native pass found cover at least ``extra_skip_coverage`` of the
    photo (their boxes' union: no room left for far people; 0.75 changed no count on the benchmark sets and saves
    the 512-px pass, 4x the native one, on filled photos such as the bundled group photo; ``None``: always run).
    ``border_score_threshold``: the person score that suffices for such a person (default :data:`BORDER_SCORE`).
    ``tile``: when a pass is full (6 people), when the native pass is crowded (its sixth candidate scores >=
    ``crowd_score`` and several were not accepted: MoveNet reports 6 people at most, and fills its slots with
    person-like candidates only in a crowd) or the image is more than twice as long as it is wide, overlapping
    tiles are run too. Everything found is merged by keypoint similarity (``merge="oks"``,
    :func:`~.types.nms_oks`; ``"box"``: box IoU and containment, :func:`~.types.nms`), so one person found twice
    is kept once and two people standing close both stay (``benchmarks/bench_detectors.py``).
    ``candidates``: people each pass decodes: MoveNet's own 6, then the next peaks of its centre heatmap decoded
    the same way (:func:`wide_decoding`; 6: MoveNet alone). ``occluded_score``
    / ``occluded_keypoints``: where the native pass found someone by the rule above, a candidate of any pass with
    this person score and this many confident keypoints is a person partly hidden by others
    (:func:`occluded_mask`), marked ``behind`` (:class:`~.types.PersonDetections`); ``occluded_score=None``: off.
    ``verifier``: a :class:`~.verifier.PersonVerifier` that looks again at the candidates of the native and larger
    passes the rules did not keep, where someone was found, and adds those it is sure of (marked ``behind``);
    :meth:`from_pretrained` loads the shipped one, the constructor's default is none (the rules alone).
    """

    MAX_PEOPLE = MOVENET_SLOTS

    def __init__(self, graph: TFGraphModule, input_size: int = 256, score_threshold: float = 0.15,
                 min_keypoints: int = 7, keypoint_threshold: float = 0.3, tile: bool = True,
                 nms_iou: float = 0.5, extra_sizes: tuple[int, ...] = (512,), merge: str = "oks",
                 border_keypoints: int | None = 5, extra_max_share: float = 0.5,
                 extra_score_threshold: float = 0.25, extra_skip_coverage: float | None = 0.75,
                 crowd_score: float | None = CROWD_SCORE, extra_hint: float | None = EXTRA_HINT,
                 border_score_threshold: float | None = BORDER_SCORE, candidates: int = 12,
                 occluded_score: float | None = OCCLUDED_SCORE, occluded_keypoints: int = OCCLUDED_KEYPOINTS,
                 verifier: PersonVerifier | None = None) -> None:
        for size in (input_size, *extra_sizes):
            if size < 64 or size % 32:
                raise ValueError(f"each input size must be a multiple of 32 and >= 64, got {size}")
        if merge not in ("box", "oks"):
            raise ValueError(f"merge must be 'box' or 'oks', got {merge!r}")
        if border_keypoints is not None and not 1 <= border_keypoints <= 17:
            raise ValueError(f"border_keypoints must be in [1, 17], got {border_keypoints}")
        if extra_skip_coverage is not None and not 0.0 < extra_skip_coverage <= 1.0:
            raise ValueError(f"extra_skip_coverage must be in (0, 1], got {extra_skip_coverage}")
        if not self.MAX_PEOPLE <= candidates <= 64:
            raise ValueError(f"candidates must be in [{self.MAX_PEOPLE}, 64], got {candidates}")
        if not 1 <= occluded_keypoints <= 17:
            raise ValueError(f"occluded_keypoints must be in [1, 17], got {occluded_keypoints}")
        for name, value in (("crowd_score", crowd_score), ("extra_hint", extra_hint),
                            ("border_score_threshold", border_score_threshold), ("occluded_score", occluded_score)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.graph = graph.eval()
        self.verifier = verifier
        self.candidates = candidates
        self._wide = wide_decoding(graph, candidates) if candidates > self.MAX_PEOPLE else None
        self.occluded_score = occluded_score
        self.occluded_keypoints = occluded_keypoints
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.min_keypoints = min_keypoints
        self.keypoint_threshold = keypoint_threshold
        self.tile = tile
        self.nms_iou = nms_iou
        self.extra_sizes = tuple(int(v) for v in extra_sizes)
        self.merge = merge
        self.border_keypoints = border_keypoints
        self.extra_max_share = extra_max_share
        self.extra_score_threshold = extra_score_threshold
        self.extra_skip_coverage = extra_skip_coverage
        self.crowd_score = crowd_score
        self.extra_hint = extra_hint
        self.border_score_threshold = border_score_threshold

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, **kwargs: object) -> MoveNetDetector:
        """Load the ported graph (default: the copy shipped in the package) and the shipped candidate verifier
        (``verifier``: a :class:`~.verifier.PersonVerifier`, a directory holding one, or None for none)."""
        verifier = kwargs.pop("verifier", DEFAULT_VERIFIER)
        if isinstance(verifier, (str, os.PathLike)):
            verifier = PersonVerifier.from_pretrained(verifier)
        return cls(load_graph_model(source or WEIGHTS_DIR / "movenet-multipose"),  # type: ignore[arg-type]
                   verifier=verifier, **kwargs)  # type: ignore[arg-type]

    def to(self, device: str | torch.device) -> MoveNetDetector:
        self.graph.to(device)
        if self.verifier is not None:
            self.verifier.to(device)
        if self._wide is not None:
            self._wide.to(device)
        return self

    def native_only(self) -> MoveNetDetector:
        """This detector with its native pass alone (no larger pass, no tiles), sharing its graph: peeling's second
        look (:mod:`.peeling`), where the people hidden in a crowd are of the crowd's own scale. On the painted-out
        group photo the full detector's hints start its 512-px pass and tiles: 120 ms for nobody, the native pass
        25 ms (CCP val composites' reported recall with peeling 68.3% with every pass, 67.0% with the native one)."""
        light = copy.copy(self)
        light.extra_sizes, light.tile = (), False
        light.verifier = None  # trained on whole photos, not on painted-out ones
        return light

    @torch.no_grad()
    def _single_pass(self, image: np.ndarray, size: int | None = None,
                     offset: tuple[int, int] = (0, 0)) -> PersonDetections:
        """MoveNet's candidates on ``image`` resized to ``size`` on the long side (default ``input_size``), by
        descending score, in the coordinates of an image whose top-left corner is ``offset`` (x, y) before it;
        not yet accepted."""
        h, w = image.shape[:2]
        scale = (size or self.input_size) / max(h, w)
        th = max(32, int(round(h * scale / 32)) * 32)
        tw = max(32, int(round(w * scale / 32)) * 32)
        device = next(iter(self.graph.buffers())).device
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
        x = x.round().clamp(0, 255).to(torch.int32).permute(0, 2, 3, 1).contiguous()
        name = self.graph.spec.outputs.get("output_0", "Identity")
        if self._wide is None:
            out = self.graph(x)[name][0]
        else:  # MoveNet's own six, then the next peaks from the same maps, decoded the same way: only where
            # the sixth peak could be someone (a person's score is at most its centre peak, and the next peaks are
            # lower): a photo whose sixth peak is lower pays nothing
            maps = self.graph(x, outputs=[name, _PEAKS, *HEADS])
            out = maps[name][0]
            if float(maps[_PEAKS].min()) >= self._lowest_score():
                wide = self._wide(*(maps[h] for h in HEADS))[name][0]
                out = torch.cat([out, wide[self.MAX_PEOPLE:self.candidates]])
        out = out.float().cpu().numpy()
        kpts = out[:, :51].reshape(-1, 17, 3)
        x0, y0 = offset
        keypoints = np.stack([kpts[..., 1] * w + x0, kpts[..., 0] * h + y0, kpts[..., 2]], axis=-1)
        boxes = np.stack([out[:, 52] * w + x0, out[:, 51] * h + y0, out[:, 54] * w + x0, out[:, 53] * h + y0],
                         axis=-1)
        order = np.argsort(-out[:, 55], kind="stable")
        return PersonDetections(boxes, out[:, 55], keypoints).select(order)

    def _lowest_score(self) -> float:
        """The lowest person score any rule of :meth:`_kept` accepts."""
        scores = [self.score_threshold, self.border_score_threshold, self.occluded_score]
        return min(v for v in scores if v is not None)

    def _accepted(self, dets: PersonDetections, size: tuple[int, int]) -> np.ndarray:
        return accepted_mask(dets, self.score_threshold, self.min_keypoints, self.keypoint_threshold, size,
                             self.border_keypoints, self.border_score_threshold)

    def _kept(self, dets: PersonDetections, size: tuple[int, int], someone: bool | None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Bool per detection: kept (by the full rule, or as partly hidden), and kept as partly hidden only — where
        ``someone`` was found by the full rule, a candidate with the evidence of :func:`occluded_mask` (None: where
        one of ``dets`` is, as on the native pass)."""
        strict = self._accepted(dets, size)
        if someone is None:
            someone = bool(strict.any())
        hidden = np.zeros(len(dets), dtype=bool)
        if someone and self.occluded_score is not None and len(dets):
            hidden = ~strict & occluded_mask(dets, self.occluded_score, self.occluded_keypoints,
                                             self.keypoint_threshold)
        return strict | hidden, hidden

    def _accept(self, dets: PersonDetections, size: tuple[int, int], someone: bool = False,
                decided: tuple[np.ndarray, np.ndarray] | None = None) -> PersonDetections:
        """The detections :meth:`_kept` (or as ``decided`` already says), those partly hidden marked ``behind``."""
        kept, hidden = self._kept(dets, size, someone) if decided is None else decided
        index = np.nonzero(kept)[0]
        out = dets.select(index)
        return dataclasses.replace(out, behind=hidden[index]) if hidden.any() else out

    def _small(self, dets: PersonDetections, height: int) -> PersonDetections:
        """The detections of a larger pass that it exists for: people at most ``extra_max_share`` of the image's
        height (the native pass sees large ones), scored at least ``extra_score_threshold`` (seen larger, the
        prints and folds of a garment photo look like tiny people to MoveNet, with scores of 0.15-0.25)."""
        small = dets.boxes[:, 3] - dets.boxes[:, 1] <= self.extra_max_share * height
        return dets.select(np.nonzero(small & (dets.scores >= self.extra_score_threshold))[0])

    def _crowded(self, scores: np.ndarray, accepted: int) -> bool:
        """Whether MoveNet's own slots (the ``scores`` of its :data:`MOVENET_SLOTS` best candidates) are all
        person-like (the last scored >= ``crowd_score``) and at least :data:`CROWD_UNSURE` of them fail the full rule
        (``accepted``: how many pass it): a crowd, where more people than a pass reports may stand and it is unsure
        of several."""
        return (self.crowd_score is not None and len(scores) >= self.MAX_PEOPLE
                and float(scores.min()) >= self.crowd_score and len(scores) - accepted >= CROWD_UNSURE)

    def __call__(self, image: np.ndarray) -> PersonDetections:
        found, passes = self.detect(image)
        if self.verifier is None:
            return found
        return self.verifier.rescue(found, passes, np.asarray(image).shape[:2])

    def detect(self, image: np.ndarray) -> tuple[PersonDetections, list[tuple[int, PersonDetections]]]:
        """The people the rules accept (no verifier), and the candidates of the native pass (pass id 0) and of the
        larger passes that ran (1), each by descending score, before acceptance: what :attr:`verifier` looks at."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        h, w = image.shape[:2]
        native = self._single_pass(image)
        passes = [(0, native)]
        accepted, hidden = self._kept(native, (h, w), None)
        strict = accepted & ~hidden
        someone = bool(strict.any())  # found by the full rule: then people may hide behind them
        found = self._accept(native, (h, w), decided=(accepted, hidden))
        sizes = self.extra_sizes
        if self.extra_skip_coverage is not None and box_coverage(found.boxes, h, w) >= self.extra_skip_coverage:
            sizes = ()  # the people found fill the photo: no room for far ones
        slots = slice(0, self.MAX_PEOPLE)  # as calibrated: the six best (a pass is by descending score)
        if self.extra_hint is not None and not (native.scores[slots][~accepted[slots]] >= self.extra_hint).any():
            sizes = ()  # no hint of anyone the native pass did not accept: a far person leaves one
        parts = [found]
        for size in sizes:
            candidates = self._single_pass(image, size)
            passes.append((1, candidates))
            parts.append(self._small(self._accept(candidates, (h, w), someone), h))
        full = (self._crowded(native.scores[slots], int(strict[slots].sum()))
                or max(len(p) for p in parts) >= self.MAX_PEOPLE)
        tiles = _tiles(h, w, full=full) if self.tile else []
        for x0, y0, x1, y1 in tiles:
            parts.append(self._accept(self._single_pass(image[y0:y1, x0:x1], offset=(x0, y0)), (h, w), someone))
        if len(parts) == 1:
            return found, passes
        merged = PersonDetections.concatenate(parts)
        # the native pass sees whole people best: the other passes add people, never replace one it found (at
        # 512 px a tall photo's person may come back as head and shoulders, scored as high)
        priority = np.repeat([0, *([1] * (len(parts) - 1))], [len(p) for p in parts])
        if self.merge == "oks":
            return nms_oks(merged, iou=self.nms_iou, keypoint_threshold=self.keypoint_threshold,
                           priority=priority), passes
        return nms(merged, self.nms_iou, priority=priority), passes


