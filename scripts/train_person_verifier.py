"""Train the MoveNet candidate verifier (``spectrum_parsing.persons.PersonVerifier``) and write the shipped copy.

    python scripts/train_person_verifier.py                     # ~8 min on 2 cores: data, training, threshold
    python scripts/train_person_verifier.py --reuse             # retrain on the cached candidates (runs/verifier)

Data: copy-paste composites of 2-12 people cut from CCP *train* photos (mixed sizes, people cut by the frame and
hidden behind each other: the recipe of ``benchmarks/bench_detectors.py``'s composites, other draws) put onto
person-free photos (``garments_unworn`` *train*), so that the truth holds everyone in the image; and the unworn
*train* photos themselves (nobody). For each image, the shipped MoveNet detector without a verifier gives the
people its rules accept and the candidates of its passes (``MoveNetDetector.detect``); a candidate is a positive
when its box (clipped to the image) has IoU >= 0.5 with a true person the accepted people do not already match
(one-to-one, greedy by IoU), else a negative (a part or a double of someone found, a garment, the background).
Nothing of CCP val, ``cihp_dev`` or ``lip_dev`` is used.

Training: the MLP of ``PersonVerifier`` with binary cross-entropy on 80% of the composites (AdamW, seeded); the
acceptance threshold is the one of 0.4-0.8 that gives the most right person counts on the other 20% (ties: the
higher). Writes ``src/spectrum_parsing/weights/movenet-verifier`` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the person benchmark's truth and matching, so labels and scores agree

from bench_detectors import matches, people_boxes  # noqa: E402
from spectrum_parsing.data import open_dataset  # noqa: E402
from spectrum_parsing.data.transforms import CopyPasteComposite  # noqa: E402
from spectrum_parsing.data.transforms.composite import paste_on_background  # noqa: E402
from spectrum_parsing.persons import MoveNetDetector, box_iou  # noqa: E402
from spectrum_parsing.persons.types import clip_boxes  # noqa: E402
from spectrum_parsing.persons.verifier import (  # noqa: E402
    DEFAULT_DIR,
    PersonVerifier,
    VerifierConfig,
    candidate_features,
)

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)


def images(composites: int, seed: int):
    """(image, true boxes) of the composites, then of the unworn train photos (no one)."""
    shared = ROOT.parent / "shared" / "datasets"
    data = open_dataset(f"ccp:{shared / 'ccp'}", split="train")
    backgrounds = open_dataset(f"no-person:{shared / 'garments_unworn'}", split="train")
    rng, back_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    paste = CopyPasteComposite(num_people=(2, 12), scale=(0.25, 1.0), min_inside=0.6, min_visible=0.4)
    for k in range(composites):
        picks = rng.choice(len(data), size=12, replace=False)
        sample = paste([data[int(i)] for i in picks], rng)
        moved = paste_on_background(sample, backgrounds[k % len(backgrounds)].image, back_rng)
        yield np.asarray(moved.image), people_boxes(moved)
    for k in range(len(backgrounds)):
        yield np.asarray(backgrounds[k].image), np.zeros((0, 4))


def gather(composites: int, seed: int, out: Path) -> None:
    """Features, labels and per-image bookkeeping of every candidate, cached in ``out`` (npz)."""
    detector = MoveNetDetector.from_pretrained(verifier=None)
    rows, labels, image_of, truth, found_counts, hits_found = [], [], [], [], [], []
    for n, (image, gt) in enumerate(images(composites, seed)):
        size = image.shape[:2]
        found, passes = detector.detect(image)
        taken = matches(gt, found.boxes, size)
        left = [i for i in range(len(gt)) if i not in taken]
        for pass_id, candidates in passes:
            if not len(candidates):
                continue
            rows.append(candidate_features(candidates, found, size, pass_id))
            y = np.zeros(len(candidates))
            if left:
                y = (box_iou(clip_boxes(candidates.boxes, size), gt[left]).max(1) >= 0.5).astype(np.float64)
            labels.append(y)
            image_of.append(np.full(len(candidates), n))
        truth.append(len(gt))
        found_counts.append(len(found))
        hits_found.append(len(taken))
        if n % 50 == 0:
            print(f"{n} images", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, features=np.concatenate(rows), labels=np.concatenate(labels),
                        image=np.concatenate(image_of), truth=np.asarray(truth), found=np.asarray(found_counts),
                        hits_found=np.asarray(hits_found), composites=composites)


def fit(features: np.ndarray, labels: np.ndarray, hidden: int, steps: int, seed: int) -> PersonVerifier:
    torch.manual_seed(seed)
    model = PersonVerifier(VerifierConfig(hidden=hidden))
    model.mean.copy_(torch.from_numpy(features.mean(0)))
    model.scale.copy_(torch.from_numpy(features.std(0) + 1e-6))
    x, y = torch.from_numpy(features), torch.from_numpy(labels).float()
    optimiser = torch.optim.AdamW(model.net.parameters(), lr=3e-3, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (512,), generator=generator)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def counts_right(probs: np.ndarray, labels: np.ndarray, image: np.ndarray, truth: np.ndarray, found: np.ndarray,
                 threshold: float) -> float:
    """Share of images whose count would be right, approximately: the people found plus the distinct true people
    among the accepted candidates plus the accepted false ones (the detector's duplicate check is not replayed:
    a slightly pessimistic estimate for choosing the threshold only)."""
    right = 0
    for n in range(len(truth)):
        sel = (image == n) & (probs >= threshold)
        extra = min(int(labels[sel].sum()), int(truth[n]) - int(found[n])) + int((labels[sel] == 0).sum())
        right += int(found[n]) + extra == int(truth[n])
    return right / max(len(truth), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composites", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--cache", default=str(ROOT / "runs" / "verifier" / "candidates.npz"))
    parser.add_argument("--reuse", action="store_true", help="train on the cached candidates")
    parser.add_argument("--out", default=str(DEFAULT_DIR))
    args = parser.parse_args()
    torch.set_num_threads(2)
    cache = Path(args.cache)
    if not (args.reuse and cache.is_file()):
        gather(args.composites, args.seed, cache)
    data = np.load(cache)
    features, labels, image = data["features"], data["labels"], data["image"]
    composites = int(data["composites"])
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(composites, size=composites // 5, replace=False).tolist())
    is_held = np.isin(image, sorted(held))
    model = fit(features[~is_held], labels[~is_held], args.hidden, args.steps, args.seed)
    probs = model.probabilities(features[is_held])
    index = {n: k for k, n in enumerate(sorted(held))}
    held_image = np.asarray([index[int(n)] for n in image[is_held]])
    order = sorted(held)
    scores = {t: counts_right(probs, labels[is_held], held_image, data["truth"][order], data["found"][order], t)
              for t in THRESHOLDS}
    before = float(np.mean(data["truth"][order] == data["found"][order]))
    best = max(THRESHOLDS, key=lambda t: (scores[t], t))
    print(f"held-out composites: right count {100 * before:.1f}% without the verifier; "
          + ", ".join(f"{t}: {100 * s:.1f}%" for t, s in scores.items()) + f"; threshold {best}")
    print(f"candidates {len(labels)} ({int(labels.sum())} positive); training images {composites - len(held)} "
          f"composites + {len(data['truth']) - composites} unworn photos")
    model.config.threshold = best
    model.save_pretrained(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
