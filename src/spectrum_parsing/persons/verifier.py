"""A second look at the candidates MoveNet did not accept: a small learned verifier.

MoveNet-MultiPose decodes more candidates than its acceptance rules keep (:class:`~.movenet.MoveNetDetector`: a
person score and enough confident keypoints). In a crowd, most people it misses are among them (a person half
hidden behind another, one cut by the frame, a small far one), scored as low as the crops of parts of people
already found and the prints of a garment. No single threshold tells them apart; their keypoints and where they
lie against the people already found do. :class:`PersonVerifier` is a small MLP over such evidence
(:func:`candidate_features`), trained on copy-paste composites of CCP *train* people on person-free photos, whose
truth holds everyone in the image (``scripts/train_person_verifier.py``); :meth:`PersonVerifier.rescue` adds the
candidates it is sure of to the people found, one person never twice (keypoint similarity, as the passes are
merged). It looks only where someone was found by the rules: a photo of garments nobody wears stays empty.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..configs import ConfigBase, ConfigError
from ..hub import ModelLoadError
from .types import WEIGHTS_DIR, PersonDetections, box_iou, clip_boxes, oks, same_people

__all__ = ["FEATURE_NAMES", "PersonVerifier", "VerifierConfig", "candidate_features", "same_person"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_DIR = WEIGHTS_DIR / "movenet-verifier"

_GROUPS = (range(0, 5), range(5, 7), range(7, 11), range(11, 13), range(13, 17))
FEATURE_NAMES = (
    "score", "log score", "keypoints >= 0.1", "keypoints >= 0.2", "keypoints >= 0.3", "keypoints >= 0.5",
    "mean of the 5 best keypoint scores", "best head keypoint", "best shoulder", "best elbow or wrist", "best hip",
    "best knee or ankle", "box height / image height", "box width / height", "box touches the border",
    "best box IoU with a person found", "share of the box inside a person found",
    "share of a person found inside the box", "best keypoint similarity with a person found (-1: none to compare)",
    "box height / the median height of the people found", "rank in its pass", "pass (0 native, 1 larger)",
    "people found", "best box IoU with a better candidate of its pass", "confident keypoints' extent / box area")
"""What :func:`candidate_features` gives per candidate, in order."""

BORDER_MARGIN = 0.02


def candidate_features(candidates: PersonDetections, found: PersonDetections, size: tuple[int, int],
                       pass_id: int) -> np.ndarray:
    """(N, len(FEATURE_NAMES)) float64 evidence for each of one pass's ``candidates`` (by descending score, as the
    pass gives them) being a person not among ``found``: its own score and keypoints, its box, and how it lies
    against the people ``found`` (boxes and keypoint similarity); ``size`` is the image's (H, W)."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    if candidates.keypoints is None:
        raise ValueError("the verifier needs the candidates' keypoints")
    h_img, w_img = size
    b = clip_boxes(candidates.boxes, size)
    k = candidates.keypoints[..., 2].astype(np.float64)
    scores = candidates.scores.astype(np.float64)
    height, width = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    area = np.maximum(height * width, 1.0)
    cols = [scores, np.log(scores.clip(0) + 1e-4)]
    cols += [(k >= t).sum(1).astype(np.float64) for t in (0.1, 0.2, 0.3, 0.5)]
    cols += [np.sort(k, 1)[:, -5:].mean(1)]
    cols += [k[:, list(g)].max(1) for g in _GROUPS]
    touches = ((b[:, 0] <= BORDER_MARGIN * w_img) | (b[:, 1] <= BORDER_MARGIN * h_img)
               | (b[:, 2] >= (1 - BORDER_MARGIN) * w_img) | (b[:, 3] >= (1 - BORDER_MARGIN) * h_img))
    cols += [height / h_img, width / np.maximum(height, 1.0), touches.astype(np.float64)]
    if len(found):
        fb = clip_boxes(found.boxes, size)
        found_area = np.maximum((fb[:, 2] - fb[:, 0]) * (fb[:, 3] - fb[:, 1]), 1.0)
        iou = box_iou(b, fb)
        inter = iou * (area[:, None] + found_area[None]) / (1 + iou)
        if found.keypoints is not None:
            similar = oks(PersonDetections.concatenate([candidates, found]))[:n, n:]
            similar = np.where(np.isnan(similar), -1.0, similar).max(1)
        else:
            similar = np.full(n, -1.0)
        cols += [iou.max(1), (inter / area[:, None]).max(1), (inter / found_area[None]).max(1), similar,
                 height / max(float(np.median(fb[:, 3] - fb[:, 1])), 1.0)]
    else:
        cols += [np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, -1.0), np.ones(n)]
    cols += [np.arange(n, dtype=np.float64), np.full(n, float(pass_id)), np.full(n, float(len(found)))]
    among = np.tril(box_iou(b, b), -1)
    cols += [among.max(1)]
    sure = k >= 0.2
    xy = candidates.keypoints[..., :2].astype(np.float64)
    span = (np.where(sure[..., None], xy, -np.inf).max(1) - np.where(sure[..., None], xy, np.inf).min(1))
    extent = np.where(sure.any(1), span[:, 0] * span[:, 1] / area, 0.0)
    cols += [extent]
    return np.stack(cols, 1)


def same_person(candidate: PersonDetections, people: PersonDetections, oks_threshold: float = 0.5,
                iou: float = 0.5, containment: float = 0.8, keypoint_threshold: float = 0.3) -> bool:
    """Whether the one detection ``candidate`` is one of ``people`` (:func:`~.types.same_people`, the rule of
    :func:`~.types.nms_oks`)."""
    if len(people) == 0:
        return False
    both = PersonDetections.concatenate([candidate, people])
    return bool(same_people(both, oks_threshold, iou, containment, keypoint_threshold)[0, 1:].any())


@dataclasses.dataclass
class VerifierConfig(ConfigBase):
    """The verifier's shape and its acceptance threshold (a candidate is a person at probability >= ``threshold``).
    ``min_score``: candidates scored below this are not looked at (MoveNet's noise floor)."""

    features: int = len(FEATURE_NAMES)
    hidden: int = 32
    threshold: float = 0.6
    min_score: float = 0.0

    def __post_init__(self) -> None:
        if self.features != len(FEATURE_NAMES):
            raise ConfigError(f"VerifierConfig.features: this version computes {len(FEATURE_NAMES)} features, "
                              f"got {self.features}")
        if not 1 <= self.hidden <= 1024:
            raise ConfigError(f"VerifierConfig.hidden must be in [1, 1024], got {self.hidden}")
        for name in ("threshold", "min_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"VerifierConfig.{name} must be in [0, 1], got {value}")


class PersonVerifier(nn.Module):
    """Probability that a MoveNet candidate is a person not yet found (an MLP over :func:`candidate_features`,
    standardised by the training set's mean and spread). No I/O in the constructor: :meth:`from_pretrained` loads
    the shipped one (``weights/movenet-verifier``) or a directory :meth:`save_pretrained` wrote."""

    def __init__(self, config: VerifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or VerifierConfig()
        c = self.config
        self.register_buffer("mean", torch.zeros(c.features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(c.features, dtype=torch.float64))
        self.net = nn.Sequential(nn.Linear(c.features, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.hidden), nn.ReLU(),
                                 nn.Linear(c.hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (N,) for (N, features) raw features."""
        x = (features.to(self.mean.dtype) - self.mean) / self.scale
        return self.net(x.to(self.net[0].weight.dtype))[:, 0]

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N,) probabilities for (N, features) raw features."""
        if len(features) == 0:
            return np.zeros(0)
        device = self.mean.device
        return torch.sigmoid(self(torch.as_tensor(np.asarray(features), device=device))).double().cpu().numpy()

    def rescue(self, found: PersonDetections, passes: list[tuple[int, PersonDetections]],
               size: tuple[int, int]) -> PersonDetections:
        """``found`` plus the candidates of ``passes`` ((pass id, that pass's candidates by descending score))
        the verifier accepts, most probable first, each unless it is a person already kept (:func:`same_person`);
        the added ones are marked ``behind`` (partly hidden people own what the people in front leave). Nothing
        is added where nobody was found."""
        if len(found) == 0:
            return found
        pool, probs = [], []
        for pass_id, candidates in passes:
            if len(candidates) == 0:
                continue
            p = self.probabilities(candidate_features(candidates, found, size, pass_id))
            for j in np.nonzero((p >= self.config.threshold) & (candidates.scores >= self.config.min_score))[0]:
                pool.append(candidates.select([int(j)]))
                probs.append(float(p[j]))
        kept = found
        added = 0
        for i in np.argsort(-np.asarray(probs), kind="stable"):
            if not same_person(pool[i], kept):
                kept = PersonDetections.concatenate([kept, pool[i]])
                added += 1
        if added == 0:
            return found
        behind = np.concatenate([found.is_behind, np.ones(added, dtype=bool)])
        return dataclasses.replace(kept, behind=behind)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.config.to_json_file(out / CONFIG_NAME)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(out / WEIGHTS_NAME))
        return out

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None) -> PersonVerifier:
        """Load a verifier from a directory :meth:`save_pretrained` wrote (default: the shipped one); missing,
        unexpected or mis-shaped tensors raise :class:`~spectrum_parsing.hub.ModelLoadError` naming them."""
        folder = Path(source) if source is not None else DEFAULT_DIR
        if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
            raise ModelLoadError(f"{folder}: not a person verifier (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
        config = VerifierConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")))
        model = cls(config)
        state = load_file(str(folder / WEIGHTS_NAME))
        own = model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or shapes:
            raise ModelLoadError(f"{folder}: weights do not match the verifier: missing keys {missing}; unexpected "
                                 f"keys {unexpected}; shape mismatches {shapes}")
        model.load_state_dict(state, strict=True)
        return model.eval()
