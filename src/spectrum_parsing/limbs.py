"""Limb geometry: which body region (face, an arm, a leg, the torso) a pixel of a person belongs to, from the
person's 17 COCO keypoints (MoveNet's, or any detector's in that order).

Each region is a set of capsules: line segments between the person's confident keypoints (shoulder-elbow-wrist,
hip-knee-ankle, nose-eyes-ears, mid-shoulder-mid-hip), each with a radius proportional to the person's size. A
pixel goes to the region whose capsule it is closest to, measured in radii (so a pixel on a thick thigh is not
stolen by a thin forearm passing nearby), and to no region when it is more than ``max_radii`` radii from all of
them. Hands extend the arm past the wrist and feet the leg past the ankle, as LIP labels them. "Left" and
"right" are the person's own sides (COCO's and LIP's convention).

Used by the label engine (``data.pose_labels``: CCP's bare ``skin`` split into LIP's body parts for training),
at inference (body parts derived from bare skin, hands carved from arms) and by the try-on masks. Pure numpy;
imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["REGIONS", "SEGMENTS", "body_axis", "body_scale", "hand_zone", "head_span", "limb_band", "plausible_legs",
           "region_capsules", "segment_capsules", "split_by_limbs", "split_by_segments"]

REGIONS: tuple[str, ...] = ("face", "left arm", "right arm", "left leg", "right leg", "torso")
"""The regions :func:`split_by_limbs` assigns, in index order."""

NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16

# Chains of keypoints per limb, and how far past its last point a limb extends (a fraction of its last segment).
_LIMBS: dict[str, tuple[tuple[int, ...], float]] = {
    "left arm": ((L_SHOULDER, L_ELBOW, L_WRIST), 0.45),
    "right arm": ((R_SHOULDER, R_ELBOW, R_WRIST), 0.45),
    "left leg": ((L_HIP, L_KNEE, L_ANKLE), 0.25),
    "right leg": ((R_HIP, R_KNEE, R_ANKLE), 0.25),
}
# Capsule radius per region, as a fraction of the person's size (body_scale).
RADII: dict[str, float] = {"face": 0.22, "left arm": 0.11, "right arm": 0.11, "left leg": 0.15, "right leg": 0.15,
                           "torso": 0.30}

SEGMENTS: tuple[str, ...] = ("head", "torso", "left upper arm", "right upper arm", "left lower arm",
                             "right lower arm", "left upper leg", "right upper leg", "left lower leg",
                             "right lower leg")
"""The body segments :func:`split_by_segments` assigns (PASCAL-Person-Part's parts, per side), in index order."""
SEGMENT_RADII: dict[str, float] = {"head": 0.22, "torso": 0.25, "upper arm": 0.13, "lower arm": 0.12,
                                   "upper leg": 0.17, "lower leg": 0.14}
SEGMENT_THRESHOLD = 0.15
"""Keypoint confidence :func:`split_by_segments` trusts: lower than bare-skin naming's, since a segment that
is missing entirely (a raised arm MoveNet is unsure of) costs more than one slightly misplaced."""


WEAK_JOINT = 0.1
"""A limb cut short at an unsure joint goes on towards the next joint when MoveNet gives it at least this
confidence (crossed forearms: the wrists are unsure, yet their direction is right); else straight on. An unsure
elbow or knee with this confidence between a sure shoulder and wrist (hip and ankle) bends the limb there rather
than the limb running straight from end to end (an elbow resting on a knee: ``lip_dev`` right arm 52.9 -> 56.4,
body mIoU 61.2 -> 62.1; cihp_dev and VITON unchanged; ``benchmarks/bench_body_parts.py --parts-only``)."""


def _confident(keypoints: np.ndarray, threshold: float) -> np.ndarray:
    return keypoints[:, 2] >= threshold


LEG_REACH = 0.5
"""A knee or ankle lies below the torso's middle: its projection on the shoulders-to-hips axis (0 at the
shoulders' middle, 1 at the hips') is at least this. Above it, the point is the pose model's guess on an arm or a
hand (a close-up cut at the waist, a studio model cut at the thighs), not a leg joint (VITON body 81.5 -> 82.8,
``cihp_dev`` 42.3 -> 42.4, ``lip_dev`` unchanged; a knee drawn up to the chest, at about 0.7, is kept)."""


def plausible_legs(keypoints: np.ndarray, threshold: float = 0.3, reach: float = LEG_REACH) -> np.ndarray:
    """A copy of ``keypoints`` (17 COCO keypoints, x-y-score) whose knees and ankles above the torso's middle
    (:data:`LEG_REACH`) have score 0; unchanged when no shoulder or no hip is confident."""
    keypoints = np.array(keypoints, dtype=np.float64).reshape(-1, 3)
    torso = _torso_line(_confident(keypoints, threshold), keypoints[:, :2])
    if torso is None:
        return keypoints
    top, bottom = torso
    axis = bottom - top
    length2 = float(axis @ axis)
    if length2 < 1.0:
        return keypoints
    joints = np.array([L_KNEE, R_KNEE, L_ANKLE, R_ANKLE])
    along = (keypoints[joints, :2] - top) @ axis / length2
    keypoints[joints[along < reach], 2] = 0.0
    return keypoints


def knee_anchored_legs(keypoints: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """A copy of ``keypoints`` (17 COCO keypoints, x-y-score) whose hip and ankle on a side with no confident knee
    have score 0: a leg is named from its knee. For a pose from BlazePose's landmarks alone (the people the
    detector missed: lying, seated, tiny or cut by the frame), which places hips and ankles it cannot see — a
    reader lying on the grass gets both hips and an ankle on her book, unsure knees — and a sure hip and ankle
    with no knee between would run a leg straight across the book (:func:`region_capsules`)."""
    keypoints = np.array(keypoints, dtype=np.float64).reshape(-1, 3)
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        if keypoints[knee, 2] < threshold:
            keypoints[[hip, ankle], 2] = 0.0
    return keypoints


def body_scale(keypoints: np.ndarray, threshold: float = 0.3) -> float | None:
    """The person's size in pixels: the torso length (mid-shoulder to mid-hip), else 1.6 x the shoulder width,
    else 4 x the eye-ear span, whichever the confident keypoints allow (None when none does)."""
    ok = _confident(keypoints, threshold)
    xy = keypoints[:, :2].astype(np.float64)
    if ok[L_SHOULDER] and ok[R_SHOULDER] and (ok[L_HIP] or ok[R_HIP]):
        hips = [xy[i] for i in (L_HIP, R_HIP) if ok[i]]
        torso = float(np.linalg.norm((xy[L_SHOULDER] + xy[R_SHOULDER]) / 2 - np.mean(hips, axis=0)))
        if torso > 1:
            return max(torso, 1.2 * float(np.linalg.norm(xy[L_SHOULDER] - xy[R_SHOULDER])))
    if ok[L_SHOULDER] and ok[R_SHOULDER]:
        width = float(np.linalg.norm(xy[L_SHOULDER] - xy[R_SHOULDER]))
        if width > 1:
            return 1.6 * width
    span = head_span(keypoints, threshold)
    return None if span is None else 4.0 * span


def head_span(keypoints: np.ndarray, threshold: float = 0.3) -> float | None:
    """The head's size in pixels: the widest extent of the confident nose, eyes and ears (None with fewer than two
    of them, or when they span one pixel or less)."""
    head = keypoints[:5][_confident(keypoints[:5], threshold), :2].astype(np.float64)
    if len(head) < 2:
        return None
    span = float(np.ptp(head, axis=0).max())
    return span if span > 1 else None


def region_capsules(keypoints: np.ndarray, threshold: float = 0.3
                    ) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], float | None]:
    """Per region, its segments ``(p, q)`` (pixels, x-y) from the confident keypoints; and the person's size.

    A leg whose hip alone is sure has no segment — the thigh the pose would run down the body from it crosses a
    coat's hem or a hand at the hip as often as a leg, and no leg grows from a lone hip either
    (``body_naming.grow_skin``) nor gets a limb band (:func:`limb_band`) — unless the other leg's knee or ankle is
    sure: then the thigh keeps the two legs' sides apart (without it the seen leg takes both thighs: on VITON's
    studio photos, cut at the thighs, sides swapped). Measured through the shipped path
    (``benchmarks/bench_body_parts.py``, ``bench_quality.py --mode pipeline``; README, People): with no thigh at all,
    ``cihp_dev`` mIoU 36.05 -> 37.01 and ``lip_dev`` body 63.48 -> 63.76, but VITON body (first 50) 84.34 -> 81.64;
    with the exception (recorded at a8504c5) VITON comes back (first 50 84.53, first 100 77.82, all 53.18 ->
    53.99) and the real photos keep their gain."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    if keypoints.shape[0] != 17:
        raise ValueError(f"expected 17 COCO keypoints, got {keypoints.shape[0]}")
    ok = _confident(keypoints, threshold)
    xy = keypoints[:, :2]
    scale = body_scale(keypoints, threshold)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in REGIONS}
    if scale is None:
        return out, None
    # Face: the nose-eyes-ears web; a lone head keypoint is a point.
    head = [i for i in (NOSE, L_EYE, R_EYE, L_EAR, R_EAR) if ok[i]]
    web = [(NOSE, L_EYE), (NOSE, R_EYE), (L_EYE, L_EAR), (R_EYE, R_EAR), (L_EYE, R_EYE)]
    out["face"] = [(xy[a], xy[b]) for a, b in web if ok[a] and ok[b]]
    if not out["face"] and head:
        out["face"] = [(xy[i], xy[i]) for i in head]
    shoulders = [xy[i] for i in (L_SHOULDER, R_SHOULDER) if ok[i]]
    hips = [xy[i] for i in (L_HIP, R_HIP) if ok[i]]
    for name, (chain, extend) in _LIMBS.items():
        points = [i for i in chain if ok[i]]
        if (threshold > WEAK_JOINT and ok[chain[0]] and ok[chain[-1]] and not ok[chain[1]]
                and keypoints[chain[1], 2] >= WEAK_JOINT):  # an unsure elbow or knee between sure ends: bent there
            points = list(chain)
        segments = [(xy[a], xy[b]) for a, b in zip(points, points[1:])]
        if len(points) >= 2:
            a, b = xy[points[-2]], xy[points[-1]]
            if points[-1] == chain[-1]:  # hand / foot past the wrist / ankle
                segments.append((b, b + extend * (b - a)))
            else:  # the limb goes on past its last confident joint (cut by the frame, or unsure)
                nxt = chain[chain.index(points[-1]) + 1]
                if threshold > WEAK_JOINT and keypoints[nxt, 2] >= WEAK_JOINT:  # towards its next joint
                    segments.append((b, xy[nxt]))
                else:  # as long again
                    segments.append((b, b + (b - a)))
        elif points == [chain[0]] and name.endswith("leg"):  # a hip alone: see the docstring
            other = _LIMBS["right leg" if name == "left leg" else "left leg"][0]
            if ok[other[1]] or ok[other[2]]:  # the other leg is seen: the thigh keeps the two sides apart
                segments.append((xy[chain[0]], xy[chain[0]] + 0.8 * scale * _body_axis(ok, xy)))
        elif points:
            segments.append((xy[points[0]], xy[points[0]]))
        out[name] = segments
    if shoulders and hips:
        top, bottom = np.mean(shoulders, axis=0), np.mean(hips, axis=0)
        out["torso"] = [(top + 0.15 * (bottom - top), bottom)]
    return out, scale


def _torso_line(ok: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The middle of the confident shoulders and the middle of the confident hips (None when either is unknown)."""
    shoulders = [xy[i] for i in (L_SHOULDER, R_SHOULDER) if ok[i]]
    hips = [xy[i] for i in (L_HIP, R_HIP) if ok[i]]
    if not shoulders or not hips:
        return None
    return np.mean(shoulders, axis=0), np.mean(hips, axis=0)


def _body_axis(ok: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Unit vector from the shoulders' middle to the hips' (image-down when either is unknown)."""
    torso = _torso_line(ok, xy)
    if torso is not None:
        axis = torso[1] - torso[0]
        if np.linalg.norm(axis) > 1:
            return axis / np.linalg.norm(axis)
    return np.array([0.0, 1.0])


def body_axis(keypoints: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Unit vector (x, y) down the person's body: from the middle of its confident shoulders to the middle of its
    confident hips; image-down when either is unknown."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    return _body_axis(_confident(keypoints, threshold), keypoints[:, :2])


def _two_part_chain(ok: np.ndarray, xy: np.ndarray, chain: tuple[int, int, int], extend: float
                    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """Segments of the upper and lower part of a limb (root, joint, end keypoints), from whichever two or three of
    them are confident: a missing joint is the middle of root and end; a missing end or root is as far from the
    joint as the other; the lower part extends past the end by ``extend`` of its length (hand, foot)."""
    root, joint, end = (xy[i] if ok[i] else None for i in chain)
    if joint is None and root is not None and end is not None:
        joint = (root + end) / 2
    if joint is None:
        return [], []
    if end is None and root is not None:
        end = joint + (joint - root)
    if root is None and end is not None:
        root = joint - (end - joint)
    if root is None or end is None:
        return [], []
    return [(root, joint)], [(joint, end), (end, end + extend * (end - joint))]


def segment_capsules(keypoints: np.ndarray, threshold: float = 0.3
                     ) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], float | None]:
    """Per body segment (:data:`SEGMENTS`), its segments ``(p, q)`` (pixels, x-y) from the confident keypoints;
    and the person's size. The head is the nose-eyes-ears web and a crown above it; the torso the shoulder line,
    the hip line and the spine; each limb splits at its elbow or knee."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    if keypoints.shape[0] != 17:
        raise ValueError(f"expected 17 COCO keypoints, got {keypoints.shape[0]}")
    faces, scale = region_capsules(keypoints, threshold)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in SEGMENTS}
    if scale is None:
        return out, None
    ok, xy = _confident(keypoints, threshold), keypoints[:, :2]
    up = -_body_axis(ok, xy)
    head = [xy[i] for i in (NOSE, L_EYE, R_EYE, L_EAR, R_EAR) if ok[i]]
    if head:
        centre = np.mean(head, axis=0)
        out["head"] = [*faces["face"], (centre, centre + 0.25 * scale * up)]
    shoulders = [xy[i] for i in (L_SHOULDER, R_SHOULDER) if ok[i]]
    hips = [xy[i] for i in (L_HIP, R_HIP) if ok[i]]
    if shoulders:
        top = np.mean(shoulders, axis=0)
        bottom = np.mean(hips, axis=0) if hips else top - 0.9 * scale * up
        out["torso"] = [(top, bottom)]
        if len(shoulders) == 2:
            out["torso"].append((shoulders[0] + 0.25 * (shoulders[1] - shoulders[0]),
                                 shoulders[1] + 0.25 * (shoulders[0] - shoulders[1])))
        if len(hips) == 2:
            out["torso"].append((hips[0], hips[1]))
    for side, arm, leg in (("left", (L_SHOULDER, L_ELBOW, L_WRIST), (L_HIP, L_KNEE, L_ANKLE)),
                           ("right", (R_SHOULDER, R_ELBOW, R_WRIST), (R_HIP, R_KNEE, R_ANKLE))):
        out[f"{side} upper arm"], out[f"{side} lower arm"] = _two_part_chain(ok, xy, arm, _LIMBS["left arm"][1])
        upper, lower = _two_part_chain(ok, xy, leg, _LIMBS["left leg"][1])
        if not upper and ok[leg[0]]:  # a hip alone: the leg runs down the body's axis
            hip = xy[leg[0]]
            knee = hip - 0.6 * scale * up
            upper, lower = [(hip, knee)], [(knee, knee - 0.6 * scale * up)]
        out[f"{side} upper leg"], out[f"{side} lower leg"] = upper, lower
    return out, scale


HAND_REACH = 0.9
"""A hand lies within this many forearm lengths of its wrist."""


def hand_zone(shape: tuple[int, int], wrist: np.ndarray, elbow: np.ndarray, back: float,
              origin: tuple[float, float] = (0.0, 0.0), min_length: float = 0.0,
              reach: float = HAND_REACH) -> np.ndarray:
    """Bool ``shape`` mask of where a hand can be: within ``reach`` (:data:`HAND_REACH`) forearm lengths of the
    ``wrist``
    (x, y) and at most ``back`` forearm lengths behind it towards the ``elbow`` (LIP counts the hand as arm;
    this carves it out). ``origin``: the mask's top-left corner in the keypoints' coordinates; the forearm
    counts as at least ``min_length`` pixels long."""
    wx, wy = float(wrist[0]) - origin[0], float(wrist[1]) - origin[1]
    ex, ey = float(elbow[0]) - origin[0], float(elbow[1]) - origin[1]
    length = max(float(np.hypot(wx - ex, wy - ey)), min_length)
    out = np.zeros(shape, dtype=bool)
    box = _window(shape, wx, wy, wx, wy, reach * length)  # the zone lies within the disc around the wrist
    if box is None:
        return out
    (y0, y1), (x0, x1) = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    along = ((xs - wx) * (wx - ex) + (ys - wy) * (wy - ey)) / length**2
    out[y0:y1, x0:x1] = (along > -back) & (np.hypot(xs - wx, ys - wy) < reach * length)
    return out


def _window(shape: tuple[int, int], xa: float, ya: float, xb: float, yb: float,
            margin: float) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The rows and columns of ``shape`` within ``margin`` pixels of the box spanned by (xa, ya) and (xb, yb)
    (a superset of the pixels nearer than ``margin`` to the segment between them); None when none is."""
    if not np.isfinite(margin) or not all(np.isfinite(v) for v in (xa, ya, xb, yb)):
        return (0, shape[0]), (0, shape[1])
    y0 = max(int(np.floor(min(ya, yb) - margin)), 0)
    y1 = min(int(np.ceil(max(ya, yb) + margin)) + 1, shape[0])
    x0 = max(int(np.floor(min(xa, xb) - margin)), 0)
    x1 = min(int(np.ceil(max(xa, xb) + margin)) + 1, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    return (y0, y1), (x0, x1)


def limb_band(shape: tuple[int, int], keypoints: np.ndarray, threshold: float, radii: float,
              origin: tuple[float, float] = (0.0, 0.0), seen: np.ndarray | None = None,
              seen_share: float = 0.8) -> np.ndarray:
    """Bool ``shape`` mask of the pixels within ``radii`` capsule radii (:data:`RADII`) of an arm or leg segment
    between two of its joints that score at least ``threshold`` (shoulder-elbow-wrist, hip-knee-ankle; straight
    from end to end when the middle one scores less): where the pose is sure a limb lies. ``origin``: the mask's
    top-left corner in the keypoints' coordinates. ``seen``: a bool ``shape`` mask (the person mask); a segment
    whose centre line lies in it for at least ``seen_share`` of its length (within ``shape``) is left out: that
    limb is seen already, and its band would only widen the mask's edges."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    out = np.zeros(shape, dtype=bool)
    scale = body_scale(keypoints, threshold)
    if scale is None or radii <= 0:
        return out
    ok = _confident(keypoints, threshold)
    xy = keypoints[:, :2] - np.asarray(origin, dtype=np.float64)
    for name, (chain, _) in _LIMBS.items():
        points = [i for i in chain if ok[i]]  # an unsure middle joint: its ends, straight
        for a, b in zip(points, points[1:]):
            if seen is not None and _seen_share(seen, xy[a], xy[b]) >= seen_share:
                continue
            radius = radii * RADII[name] * scale
            box = _window(shape, xy[a, 0], xy[a, 1], xy[b, 0], xy[b, 1], radius)  # the band lies in it
            if box is None:
                continue
            (y0, y1), (x0, x1) = box
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
            out[y0:y1, x0:x1] |= _segment_distance(xs, ys, xy[a], xy[b]) <= radius
    return out


def _seen_share(seen: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """The share of the segment ``p``-``q``'s centre line (its points inside ``seen``'s shape) on ``seen``; 1.0
    when none of it is inside."""
    count = max(2, int(np.ceil(np.hypot(*(q - p)))) + 1)
    t = np.linspace(0.0, 1.0, count)[:, None]
    pts = np.round(p[None] + t * (q - p)[None]).astype(np.int64)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < seen.shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < seen.shape[0])
    if not inside.any():
        return 1.0
    return float(seen[pts[inside, 1], pts[inside, 0]].mean())


def _segment_distance(xs: np.ndarray, ys: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    d = q - p
    length2 = float(d @ d)
    if length2 < 1e-9:
        return np.hypot(xs - p[0], ys - p[1])
    t = np.clip(((xs - p[0]) * d[0] + (ys - p[1]) * d[1]) / length2, 0.0, 1.0)
    return np.hypot(xs - (p[0] + t * d[0]), ys - (p[1] + t * d[1]))


def split_by_limbs(mask: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3, max_radii: float = 4.0,
                   regions: Sequence[str] = REGIONS, origin: tuple[float, float] = (0.0, 0.0),
                   component_majority: float = 1.0, reach: Mapping[str, float] | None = None) -> np.ndarray:
    """Assign every pixel of ``mask`` (bool (H, W)) to a body region by the person's ``keypoints`` ((17, 3)
    ``x, y, score`` in pixels; ``origin`` is the mask's top-left corner in those coordinates).

    Returns an int16 (H, W) map: ``-1`` outside ``mask``, ``k`` for ``regions[k]`` (a subset of
    :data:`REGIONS`, in any order), ``len(regions)`` for mask pixels no region claims (no confident keypoints
    for any of them, or farther than ``max_radii`` radii from all; ``reach``: a nearer limit for some regions,
    in their radii).
    """
    unknown = sorted(set(regions) - set(REGIONS))
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known: {', '.join(REGIONS)}")
    capsules, scale = region_capsules(keypoints, threshold)
    out = _nearest_capsule(mask, capsules, {name: RADII[name] for name in regions}, scale, regions, origin,
                           max_radii, reach)
    if component_majority < 1.0:
        _component_vote(out, len(regions), component_majority)
    return out


def split_by_segments(mask: np.ndarray, keypoints: np.ndarray, threshold: float = SEGMENT_THRESHOLD,
                      max_radii: float = 4.0, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Partition ``mask`` (the person's pixels, clothing included) into :data:`SEGMENTS` by the person's
    ``keypoints``: PASCAL-Person-Part's head, torso, upper and lower arms and legs, per side. Each pixel goes to
    the nearest segment in capsule radii, except that the torso is the quadrilateral of shoulders and hips
    (inside it only a limb's own skeleton, within one radius, beats it) and never reaches below the hip line.
    Returns an int16 map as :func:`split_by_limbs` does (``k`` for ``SEGMENTS[k]``, ``len(SEGMENTS)`` unclaimed).
    """
    capsules, scale = segment_capsules(keypoints, threshold)
    mask = np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, -1, dtype=np.int16)
    ys, xs = np.nonzero(mask)
    out[ys, xs] = len(SEGMENTS)
    if scale is None or not len(ys):
        return out
    px, py = xs.astype(np.float64) + origin[0], ys.astype(np.float64) + origin[1]
    dist = np.full((len(SEGMENTS), len(ys)), np.inf)
    for k, name in enumerate(SEGMENTS):
        radius = SEGMENT_RADII[name.removeprefix("left ").removeprefix("right ")] * scale
        for p, q in capsules[name]:
            dist[k] = np.minimum(dist[k], _segment_distance(px, py, p, q) / radius)
    torso = SEGMENTS.index("torso")
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    ok, xy = _confident(kp, threshold), kp[:, :2]
    if ok[[L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]].all():
        quad = xy[[L_SHOULDER, R_SHOULDER, R_HIP, L_HIP]]
        limbs = np.array([k for k, name in enumerate(SEGMENTS) if name not in ("head", "torso")])
        inside = _inside_polygon(px, py, quad) & (dist[limbs].min(0) > 1.0)
        dist[torso, inside] = 0.0
        down = _body_axis(ok, xy)
        below = (px - (xy[L_HIP, 0] + xy[R_HIP, 0]) / 2) * down[0] + (py - (xy[L_HIP, 1] + xy[R_HIP, 1]) / 2) * down[1]
        dist[torso, below > 0] = np.inf
    label = dist.argmin(0).astype(np.int16)
    label[dist.min(0) > max_radii] = len(SEGMENTS)
    out[ys, xs] = label
    return out


def _inside_polygon(xs: np.ndarray, ys: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Whether each point lies inside ``polygon`` ((K, 2) x-y vertices; even-odd rule)."""
    inside = np.zeros(xs.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if y0 == y1:
            continue
        crosses = (y0 > ys) != (y1 > ys)
        x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xs < x_at)
    return inside


def _nearest_capsule(mask: np.ndarray, capsules: dict[str, list[tuple[np.ndarray, np.ndarray]]],
                     radii: dict[str, float], scale: float | None, names: Sequence[str],
                     origin: tuple[float, float], max_radii: float,
                     reach: Mapping[str, float] | None = None) -> np.ndarray:
    """Each ``mask`` pixel's nearest of the ``names``' capsules, in capsule radii (``radii`` x ``scale``);
    ``len(names)`` beyond ``max_radii`` of all (or beyond its nearest region's ``reach``), ``-1`` outside the
    mask."""
    mask = np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, -1, dtype=np.int16)
    ys, xs = np.nonzero(mask)
    out[ys, xs] = len(names)
    if scale is None or not len(ys):
        return out
    px, py = xs.astype(np.float64) + origin[0], ys.astype(np.float64) + origin[1]
    best = np.full(len(ys), np.inf)
    label = np.full(len(ys), len(names), dtype=np.int16)
    for k, name in enumerate(names):
        radius = radii[name] * scale
        for p, q in capsules[name]:
            dist = _segment_distance(px, py, p, q) / radius
            closer = dist < best
            best[closer] = dist[closer]
            label[closer] = k
    label[best > max_radii] = len(names)
    for k, name in enumerate(names):
        if reach and name in reach:
            label[(label == k) & (best > reach[name])] = len(names)
    out[ys, xs] = label
    return out


def _component_vote(labels: np.ndarray, count: int, majority: float) -> None:
    """In place: a connected piece of skin whose pixels mostly (``majority``) go to one region goes to it whole
    (a hand resting on a thigh is its own piece, and stays with the arm most of it is near)."""
    from scipy import ndimage

    pieces, n = ndimage.label(labels >= 0)
    if n == 0:
        return
    flat = pieces.ravel()
    inside = flat > 0
    hist = np.zeros((n + 1, count + 1), dtype=np.int64)
    np.add.at(hist, (flat[inside], labels.ravel()[inside].astype(np.int64)), 1)
    top = hist[:, :count].argmax(1)
    share = hist[np.arange(n + 1), top] / np.maximum(hist.sum(1), 1)
    take = share >= majority
    take[0] = False
    sel = take[pieces]
    labels[sel] = top[pieces[sel]]
