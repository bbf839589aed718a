"""Body parts and absent prompts on real photos through the shipped path, for models and top-down options side by
side: who names bare skin (the person's pose or the parser), hidden competitors on or off, flip test-time
augmentation, input size.

For each row (``MODEL[:option=value,...]``, options of ``TopDownConfig`` plus ``image_size`` and ``movenet.ARG``,
an argument of the default person detector, ``MoveNetDetector``: ``movenet.candidates=6``,
``movenet.occluded_score=none``):

* ``lip_dev`` (25 real LIP photos, human labels), prompted with LIP's body classes: per-part IoU (hair, face,
  each arm, each leg), body-part mIoU, and the IoU of bare skin (the union of face, arms and legs) — the
  same label maps ``spectrum eval --protocol body`` scores;
* ``lip_dev`` all LIP categories mIoU; ``cihp_dev`` part AP^r / AP^r_50 (``spectrum eval``'s code);
* absent prompts on ``lip_dev`` (share of the photo labelled by garments the photo does not show);
* "saree" alone on ``examples/group.jpg`` (nobody wears one): share of the photo labelled; the same for the dress
  synonyms "gown" and "sari", and their IoU with the dress truth on CCP val photos that show a dress; "saree"
  alone in bottom-up mode (the whole-image parse the top-down fallback also runs) on the group photo and on
  ``lip_dev``;
* VITON val body-part mIoU on the first ``--viton-limit`` photos (studio photos);
* time of one parse of the group photo.

With ``--parts-only``: the per-part table (hair, face, each arm, each leg, body-part mIoU, bare skin) on the three
sets with human body-part labels — ``lip_dev``, ``cihp_dev`` (real photos, one and several people) and VITON val
(studio photos) — for the parser's own part names (``body_parts=model``), the pose's (``body_parts=pose``) and
the default combination (``sides``):

    python benchmarks/bench_body_parts.py --parts-only --viton-limit 100 --rows spectrum-lite2 \
        "spectrum-lite2:body_parts=model" "spectrum-lite2:body_parts=pose"

    python benchmarks/bench_body_parts.py --rows spectrum-lite2 "spectrum-lite2:body_parts=model" \\
        "spectrum-lite2:competitors=off" "spectrum-lite2:competitors=all"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import eval_absent, semantic  # noqa: E402
from common import ROOT, datasets_ready, record, row_value, side_by_side  # noqa: E402

SHARED = ROOT.parent / "shared"
BODY = ["hair", "face", "left arm", "right arm", "left leg", "right leg"]
SKIN = ["face", "left arm", "right arm", "left leg", "right leg"]


def load(row: str):
    from spectrum_parsing.pipeline import SpectrumPipeline
    from spectrum_parsing.topdown import TopDownConfig

    name, _, opts = row.partition(":")
    options: dict = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = row_value(value.strip())
    image_size = int(options.pop("image_size")) if "image_size" in options else None
    movenet = {k.removeprefix("movenet."): options.pop(k) for k in list(options) if k.startswith("movenet.")}
    top_down = dataclasses.replace(TopDownConfig(), **options)
    extra = {}
    if movenet:
        from spectrum_parsing.persons import MoveNetDetector

        extra["person_detector"] = MoveNetDetector.from_pretrained(**movenet)
    return SpectrumPipeline.from_pretrained(name, image_size=image_size, top_down=top_down, **extra)


def body_parts(pipe, spec: str, split: str = "all", limit: int | None = None) -> dict:
    """Per-part IoU (hair, face, each arm, each leg), body-part mIoU and bare-skin IoU of ``pipe`` on the
    dataset ``spec`` (any format whose classes include :data:`BODY`), prompted with :data:`BODY`; pixels of other
    categories are ignored, as ``spectrum eval --protocol body`` does."""
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.evaluation import confusion_matrix, summarize

    data = open_dataset(spec, split=split)
    ids = [data.canonical.index(c) for c in BODY]
    cm = np.zeros((len(BODY) + 1,) * 2, dtype=np.int64)
    inter = union = 0
    for i in range(len(data) if limit is None else min(limit, len(data))):
        sample = data[i]
        gt = np.zeros(sample.size, dtype=np.int64)
        for k, cid in enumerate(ids):
            gt[sample.semantic == cid] = k + 1
        known = (sample.semantic == 0) | np.isin(sample.semantic, ids)  # other categories: ignored
        gt[~known] = 255
        result = pipe(sample.image, prompts=BODY, ebp=False)
        pred = np.asarray(result.label_map)  # 1 + index into BODY
        cm += confusion_matrix(gt, pred, len(BODY) + 1)
        gt_skin = np.isin(gt, range(2, len(BODY) + 1))
        pred_skin = np.isin(pred, range(2, len(BODY) + 1))
        inter += int((gt_skin & pred_skin).sum())
        union += int((gt_skin | pred_skin).sum())
    summary = summarize(cm, ["background", *BODY])
    row = {k: v for k, v in summary["per_class"].items() if k != "background"}
    row["body mIoU"] = round(summary["miou"], 2)
    row["bare skin IoU"] = round(100 * inter / max(union, 1), 2)
    return row


def lip_body(pipe) -> dict:
    """:func:`body_parts` on ``lip_dev`` (25 real LIP photos), keys prefixed ``lip_dev``."""
    return {f"lip_dev {k}": v for k, v in body_parts(pipe, f"lip:{SHARED / 'datasets' / 'lip_dev'}").items()}


def part_tables(pipe, viton_limit: int) -> dict:
    """:func:`body_parts` on the three sets with human body-part labels: ``lip_dev`` and ``cihp_dev`` (real
    photos, one and several people) and VITON val (studio photos, the first ``viton_limit``)."""
    out = lip_body(pipe)
    out.update({f"cihp_dev {k}": v
                for k, v in body_parts(pipe, f"cihp:{SHARED / 'datasets' / 'cihp_dev'}").items()})
    viton = body_parts(pipe, f"lip:{SHARED / 'datasets' / 'viton'}", "val", viton_limit)
    out.update({f"VITON val (first {viton_limit}) {k}": v for k, v in viton.items()})
    return out


def synonyms(pipe, group, photos: int = 20) -> dict:
    """Dress synonyms the model never saw as labels ("saree", "gown", "sari"): alone on the group photo, where nobody
    wears one (share of the photo labelled by the synonym; the model's EBP body parts are added and not counted),
    and "gown" / "saree" alone on the first ``photos`` CCP val photos whose dress covers at least 5% (IoU with the
    dress truth): what hidden competitors remove where a garment is absent, and what they cost where it is worn."""
    from spectrum_parsing.data import open_dataset

    out = {}
    for prompt in ("saree", "gown", "sari"):
        result = pipe(group, prompts=[prompt])
        share = float((result.label_map == result.label_ids[result.labels.index(prompt)]).mean())
        out[f"'{prompt}' alone on group.jpg (% of photo)"] = round(100 * share, 2)
    # the whole-image parses (bottom-up mode; the top-down fallback parses the same way) on the same photo and on
    # lip_dev's 25 real photos, where nobody wears one either
    whole = pipe.with_mode("bottom-up")

    def saree_share(photo) -> float:
        result = whole(photo, prompts=["saree"])
        return float((result.label_map == result.label_ids[result.labels.index("saree")]).mean())

    out["'saree' alone, bottom-up mode, on group.jpg (% of photo)"] = round(100 * saree_share(group), 2)
    lip = open_dataset(f"lip:{SHARED / 'datasets' / 'lip_dev'}", split="all")
    out["'saree' alone, bottom-up mode, on lip_dev (mean % of photo)"] = round(
        100 * float(np.mean([saree_share(lip[i].image) for i in range(len(lip))])), 2)
    data = open_dataset(f"ccp:{SHARED / 'datasets' / 'ccp'}", split="val")
    dress = data.canonical.index("dress")
    ious: dict[str, list[float]] = {"gown": [], "saree": []}
    for i in range(len(data)):
        sample = data[i]
        truth = sample.semantic == dress
        if truth.mean() < 0.05:
            continue
        for prompt, values in ious.items():
            result = pipe(sample.image, prompts=[prompt])
            pred = np.asarray(result.label_map) == result.label_ids[result.labels.index(prompt)]
            values.append(100 * (pred & truth).sum() / max((pred | truth).sum(), 1))
        if len(ious["gown"]) == photos:
            break
    out[f"CCP val dresses (first {photos}): 'gown' / 'saree' IoU"] = " / ".join(
        f"{np.mean(v):.1f}" for v in ious.values())
    return out


def run(row: str, args: argparse.Namespace) -> dict:
    from PIL import Image

    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.evaluation import EvalConfig, evaluate

    pipe = load(row)
    if args.parts_only:
        out = part_tables(pipe, args.viton_limit)
        print(row, out, flush=True)
        return out
    out = lip_body(pipe)
    out["lip_dev all mIoU"] = round(semantic(pipe, f"lip:{SHARED / 'datasets' / 'lip_dev'}", "all", "all")["miou"], 2)
    cihp = open_dataset(f"cihp:{SHARED / 'datasets' / 'cihp_dev'}", split="all")
    inst = evaluate(pipe, cihp, EvalConfig(protocol="instance"))
    out["cihp_dev part AP^r / AP^r_50"] = f"{inst['apr']:.1f} / {inst['apr50']:.1f}"
    out["absent prompts on lip_dev (% of photo)"] = eval_absent(pipe)["mean share labelled by absent prompts (%)"]
    group = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
    out.update(synonyms(pipe, group))
    viton = semantic(pipe, f"lip:{SHARED / 'datasets' / 'viton'}", "val", "body", args.viton_limit)
    out[f"VITON val body mIoU (first {args.viton_limit})"] = round(viton["miou"], 2)
    start = time.perf_counter()
    pipe(group)
    out["group photo parse (s)"] = round(time.perf_counter() - start, 2)
    print(row, out, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["spectrum-lite2"])
    parser.add_argument("--viton-limit", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts-only", action="store_true",
                        help="only the per-part tables: lip_dev, cihp_dev and VITON val (first --viton-limit)")
    args = parser.parse_args()
    if not datasets_ready(args.threads):
        return 2
    results = {row: run(row, args) for row in args.rows}
    title = ("Body parts per part: lip_dev, cihp_dev, VITON val, shipped path (CPU)" if args.parts_only
             else "Body parts and absent prompts on real photos, shipped path (CPU)")
    command = "python benchmarks/bench_body_parts.py --rows " + " ".join(f'"{r}"' for r in args.rows)
    if args.parts_only:
        command += f" --parts-only --viton-limit {args.viton_limit}"
    record(title, command,
           {"rows": " | ".join(args.rows), "viton_limit": args.viton_limit, "threads": args.threads},
           side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
