"""Bare skin named by the person's pose, and grown where the parser missed it.

* **named by pose** (:func:`name_skin`): the bare-skin pixels (the face, arm and leg prompts and the hidden ``skin``
  prompt: :mod:`.scoring`) are named by the person's keypoints (:func:`spectrum_parsing.limbs.split_by_limbs`:
  face, left/right arm, left/right leg, the person's own side), so a raised fist the parser calls a face is an arm.
  ``body_parts="sides"`` (default) keeps the parser's limb type where it gave one (an arm stays an arm, a leg a
  leg; the pose gives the side), except that a leg whose knee MoveNet sees takes the skin the parser called arm
  past mid-thigh (:data:`THIGH_START`: on real photos the parser calls bare legs arms; on studio photos cut at the
  thighs, hands beside them stay arms, and so does a hand resting at the hip); ``"pose"`` lets the pose name
  everything. Skin far from the head is no face (:data:`FACE_REACH`, :data:`FACE_SPANS`, :data:`DETACHED_SPANS`),
  and a piece the parser itself saw as an arm stays an arm (:data:`PARSER_ARM_SHARE`).
* **grown by skin colour** (:func:`grow_skin`, ``TopDownConfig.skin_colour``): the parser finds faces on real photos
  far more often than bare legs and whole arms. The person's own pixels it left unlabelled, near a limb's skeleton
  and of the chromaticity of the skin it did find on that person and at least half as red (:mod:`.skin`), become
  that limb, unless a garment that covers it (:data:`~.scoring.LEG_GARMENTS`, :data:`~.scoring.ARM_GARMENTS`)
  claims them — where that garment is mostly not of the skin's colour, pixels very close to it still grow
  (``skin_over_guard``: a shin in shadow the parser calls "pants"), and so do the pixels of a garment that does not
  cover that limb (a bare thigh the parser calls "upper clothes"); skin around a hand never grows into a leg, nor
  does a piece lying across the leg (:data:`ACROSS_LIMB`: the edge of a desk).
* **hands**: a piece called hair in a hand's zone is that arm (:func:`misnamed_hands`); a piece named leg that
  hangs over the person's trousers is a hand, the arm of its side (:func:`hands_over_trousers`); hands are carved
  from the arms around and beyond the wrist (:func:`carve_hand`, :data:`~.scoring.DERIVED_PARTS`).
* **shoes sided by pose** (:func:`side_footwear`): each shoe takes the side of the seen ankle it is at
  (:data:`SHOE_REACH`); footwear at no seen ankle is not reported.

Every rule works in place on crop-local ``labels`` (0 = background, else 1 + column index of the
:class:`~.scoring.ScoringPlan`) with the person's keypoints in image pixels and the crop's ``origin``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from .garments import best_of
from .limbs import (
    body_axis,
    body_scale,
    hand_zone,
    head_span,
    region_capsules,
    split_by_limbs,
)
from .scoring import GROWN_REGIONS, ScoringPlan
from .skin import ColourImage, skin_colour_distance
from .vocab import categories as vocabulary

__all__ = ["carve_hand", "grow_skin", "hands_over_trousers", "misnamed_hands", "name_skin", "side_footwear"]

GUARD_SCORE = 0.4


SURROUNDINGS_SHARE = 0.5
"""A piece of the skin's colour more than this share off the person is the surroundings, not skin
(:func:`_skin_coloured_surroundings`)."""


OVER_GUARD_SHARE = 0.5
"""Skin overrides a garment's guard (``TopDownConfig.skin_over_guard``) only for a limb whose guarded pixels on the
person are at most this share of the skin's colour: more, and the garment itself has the skin's colour (a beige
sleeve), or the photo has no colour to go by (on lip_dev's colour photos the share is at most 0.32; 0.89 / 0.74
for the arms / legs on its black-and-white one)."""


KNEES = {"left leg": 13, "right leg": 14}
"""COCO keypoint of each leg's knee: with it seen, the pose's leg takes the parser's "arm" skin in sides naming."""


HIPS = {"left leg": 11, "right leg": 12}


THIGH_START = 0.5
"""... but only past this share of the thigh (hip to knee): a hand resting at the hip stays an arm."""


ACROSS_LIMB = 2.0
"""A piece of skin grown into a leg reaching more than this many times as far across the leg as along it is
dropped: the edge of a desk in front of the legs has the colour of skin, a shin lies along the leg."""


MIN_GROWN_PIECE = 0.02
"""Skin grown by colour comes in connected pieces of at least this share of the person's size squared."""


HAND_SHARE = 0.6
"""A piece labelled as one of :data:`MISNAMED_HANDS` with this share of it in a hand's zone is that hand."""


MISNAMED_HANDS = ("hair",)
"""What the parser calls a hand it does not recognise (a raised fist against the sky: hair)."""


FACE_REACH = 3.0
"""Bare skin farther than this many face radii from the person's head keypoints is not its face (a neighbour's
raised fist inside the crop, which the parser calls a face, is left unlabelled rather than named face)."""


FACE_SPANS = 2.0
"""Nor is bare skin farther than this many head spans (the widest extent of the confident nose, eyes and ears)
from the nearest of them: true faces lie within 2 on `lip_dev` and 1.3 on VITON (MoveNet keypoints)."""


DETACHED_SPANS = 0.5
"""A connected piece of skin the pose gives the face (the parser's own face pixels cut out) none of whose pixels comes
within this many head spans of the person's confident nose, eyes or ears is not its face (a fist raised above the
head: :func:`_detached_from_head`); 0 turns the rule off."""


DETACHED_JOINTS = 0.15
"""Such a piece takes the limb nearest to it by keypoints at least this confident (a raised arm's elbow and wrist,
against the sky or a wall, are often just below the naming threshold); none near: it is left unlabelled."""


PARSER_ARM_SHARE = 0.2
"""A piece of skin the pose gives the face (the parser's own face pixels cut out) is an arm when the parser called
at least this share of it arm (:func:`_arms_the_parser_saw`)."""


SKIN_COMPONENT_MAJORITY = 0.6
"""A connected piece of bare skin goes whole to the region claiming this share of it (as the label engine)."""


ANKLES = {"left leg": 15, "right leg": 16}


SHOE_REACH = 0.4
"""A shoe is sided only within this many body sizes (:func:`~spectrum_parsing.limbs.body_scale`) of a seen ankle:
footwear far from any seen foot (a watermark on the trousers of a person whose feet the frame cuts) stays unnamed."""


def name_skin(labels: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None, origin: tuple[int, int],
               threshold: float) -> None:
    """In crop-local ``labels``, give the bare-skin pixels (any of ``plan.skin``) the body part the person's
    keypoints place them in (in place); pixels no part claims keep their label."""
    if keypoints is None or not plan.body:
        return
    mask = torch.zeros(labels.shape, dtype=torch.bool)
    for i in plan.skin:
        mask |= labels == i + 1
    if not bool(mask.any()):
        return
    regions = list(dict.fromkeys(plan.body.values()))
    target = {name: i for i, name in plan.body.items()}
    split = torch.from_numpy(split_by_limbs(mask.numpy(), keypoints, threshold=threshold, regions=regions,
                                            origin=origin, component_majority=SKIN_COMPONENT_MAJORITY,
                                            reach={"face": FACE_REACH}))
    before = labels.clone()
    face = [i for i, name in plan.body.items() if name == "face"]
    if face:
        was_face = split == regions.index("face")
        _beyond_head(split, regions.index("face"), len(regions), keypoints, origin, threshold)
        _detached_from_head(split, before, plan, regions, keypoints, origin, threshold)
        far = was_face & (split == len(regions))
        if bool(far.any()):  # the piece vote gave the face a whole piece of skin; beyond the head's reach each
            # pixel takes the limb nearest to it again (a bare upper arm joined to the face by a raised forearm)
            # (nearest capsule per pixel, no vote: the far pixels alone give them the same regions)
            unvoted = torch.from_numpy(split_by_limbs(far.numpy(), keypoints, threshold=threshold, regions=regions,
                                                      origin=origin, reach={"face": FACE_REACH}).astype(np.int64))
            back = far & (unvoted != regions.index("face")) & (unvoted != len(regions))
            split[back] = unvoted[back].to(split.dtype)
    if face and (keypoints[:5, 2] >= threshold).any():  # a "face" far from this person's head is not its face
        labels[(split == len(regions)) & (before == face[0] + 1)] = 0
    if face and plan.sides_only:
        _arms_the_parser_saw(split, before, plan, regions, keypoints, origin, threshold)
    for k, name in enumerate(regions):
        claimed = split == k
        if plan.sides_only:  # the parser's arm or leg stays that limb; the pose gives its side
            kind = name.split()[-1]
            # ... except that a leg whose knee is seen takes the skin the parser called arm (on real photos it
            # calls bare legs arms; on studio photos cut at the thighs, the hands beside them stay arms)
            takes_arms = name in KNEES and keypoints[KNEES[name], 2] >= threshold
            past_thigh = _past_thigh(tuple(labels.shape), keypoints, name, origin, threshold) if takes_arms \
                else None
            for i, other in plan.body.items():
                if other == "face" or other.split()[-1] == kind:
                    continue
                if takes_arms and other.endswith("arm"):
                    claimed &= (before != i + 1) | past_thigh
                else:
                    claimed &= before != i + 1
        labels[claimed] = target[name] + 1


def _detached_from_head(split: torch.Tensor, before: torch.Tensor, plan: ScoringPlan, regions: list[str],
                        keypoints: np.ndarray, origin: tuple[int, int], threshold: float) -> None:
    """In ``split`` (:func:`split_by_limbs`' crop-local indices into ``regions``; in place): each connected piece of
    the face region that the parser did not call face (``before``: its labels; ``plan.body`` names its face and
    arms), that does not touch the parser's face pixels nor is at least :data:`PARSER_ARM_SHARE` the parser's arm
    (:func:`_arms_the_parser_saw` names those), and that comes nowhere within :data:`DETACHED_SPANS` head spans of
    the person's confident head keypoints takes the limb nearest to it by keypoints of :data:`DETACHED_JOINTS` or
    more (pieces under :data:`MIN_GROWN_PIECE`: none), else no region. The pose gives the face whatever skin lies
    within its reach: on the bundled two-dancers photo a fist raised a head span above the head, its elbow and
    wrist scored 0.23, was "face"."""
    span = head_span(keypoints, threshold)
    if DETACHED_SPANS <= 0 or span is None:
        return
    face_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name == "face"])
    arm_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name.endswith("arm")])
    pieces, count = ndimage.label(((split == regions.index("face")) & ~torch.isin(before, face_ids)).numpy())
    if count == 0:
        return
    ys, xs = np.nonzero(pieces)
    near = _head_distance(ys, xs, keypoints, origin, threshold)
    closest = np.asarray(ndimage.minimum(near, pieces[ys, xs], index=np.arange(1, count + 1)))
    # a piece touching the face the parser saw is part of it (a neck or hairline between its face pixels)
    seen = ndimage.binary_dilation(torch.isin(before, face_ids).numpy(), structure=np.ones((3, 3), bool))
    touching = np.unique(pieces[seen & (pieces > 0)])
    # ... and a piece the parser mostly saw as an arm is left to _arms_the_parser_saw
    said_arm = np.bincount(pieces.ravel(), weights=torch.isin(before, arm_ids).numpy().ravel().astype(np.float64),
                           minlength=count + 1)[1:]
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    far = np.nonzero((closest > DETACHED_SPANS * span) & (said_arm < PARSER_ARM_SHARE * sizes))[0] + 1
    far = far[~np.isin(far, touching)]
    detached = np.isin(pieces, far)
    if not detached.any():
        return
    # a speck (a bare chest showing between a shirt's edges) is named nothing: a limb part of a few pixels is noise
    split[torch.from_numpy(detached)] = len(regions)  # no region, unless a limb is near
    scale = body_scale(keypoints, threshold) or 0.0
    named = detached & ~np.isin(pieces, far[sizes[far - 1] < MIN_GROWN_PIECE * scale**2])  # specks: nothing
    limbs = [name for name in regions if name != "face"]
    if limbs and named.any():
        again = split_by_limbs(named, keypoints, threshold=min(DETACHED_JOINTS, threshold), regions=limbs,
                               origin=origin)
        for k, name in enumerate(limbs):
            split[torch.from_numpy(again == k)] = regions.index(name)


def _arms_the_parser_saw(split: torch.Tensor, before: torch.Tensor, plan: ScoringPlan, regions: list[str],
                         keypoints: np.ndarray, origin: tuple[int, int], threshold: float) -> None:
    """In ``split`` (in place): a connected piece of what the pose gives the face and the parser did not call face,
    where the parser itself saw an arm (:data:`PARSER_ARM_SHARE` of its pixels called arm), goes whole to the arm
    the pose without the face gives most of it (none: it stays face). A forearm raised behind the
    head, its wrist hidden, lies within the head's reach, and the pose alone names it face (the bundled selfie:
    its hand touches the head, so the piece is cut from the face by the parser's own face pixels)."""
    face_region = regions.index("face")
    limbs = [name for name in regions if name != "face"]
    arms = [k for k, name in enumerate(limbs) if name.endswith("arm")]
    if not arms:  # regions come from plan.body: no arm region, no arm label either
        return
    face_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name == "face"])
    arm_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name.endswith("arm")])
    pieces, count = ndimage.label(((split == face_region) & ~torch.isin(before, face_ids)).numpy())
    if count == 0:
        return
    flat = torch.from_numpy(pieces.ravel())
    sizes = torch.bincount(flat, minlength=count + 1).double()
    said_arm = torch.bincount(flat, weights=torch.isin(before, arm_ids).ravel().double(), minlength=count + 1)
    chosen = np.nonzero((said_arm[1:] >= PARSER_ARM_SHARE * sizes[1:]).numpy())[0] + 1
    if not len(chosen):
        return
    again = split_by_limbs(np.isin(pieces, chosen), keypoints, threshold=threshold, regions=limbs, origin=origin)
    for piece in chosen:
        inside = pieces == piece
        votes = [int((again[inside] == k).sum()) for k in arms]
        if max(votes) > 0:  # the whole piece to the arm the pose gives most of it (a hand behind the head too)
            split[torch.from_numpy(inside)] = regions.index(limbs[arms[int(np.argmax(votes))]])


HAND_OVER_TROUSERS = 0.1
"""A piece of a person's skin named leg is a hand hanging over its trousers when the person's lower-body garment
(:data:`~.garments.LOWER_GARMENTS`) continues further down the body than the piece, by more than this share of the
body's size (:func:`~spectrum_parsing.limbs.body_scale`), in most (:data:`OVER_TROUSERS_SHARE`) of the piece's
columns across the body that the garment is in, and the garment is in most of them: a bare leg shows below shorts or
a skirt, never above the garment's lower end (0 turns the rule off)."""


OVER_TROUSERS_SHARE = 0.5


WRIST_UNSEEN = 0.15
"""A wrist scored below this is unseen (:func:`hands_over_trousers`): the lowered wrists MoveNet misses behind the
group photo's desk score 0.06-0.10; at 0.3, roughly where the hand is."""


def hands_over_trousers(labels: torch.Tensor, plan: ScoringPlan, lower: Sequence[int],
                         keypoints: np.ndarray | None, origin: tuple[int, int], threshold: float,
                         not_skin: torch.Tensor | None = None) -> None:
    """In crop-local ``labels`` (in place): each connected piece labelled a leg that lies over the person's
    lower-body garment (``lower`` columns; see :data:`HAND_OVER_TROUSERS`) becomes the arm of the same side (or
    unlabelled when that arm is not asked for), where the pose does not see that arm's wrist (:data:`WRIST_UNSEEN`:
    a wrist it is even half sure of places the hand, and a knee above bare shins the parser calls "pants" stays a
    leg). The bundled group photo: people stand behind a desk, the pose guesses their knees at hand height and
    misses their lowered wrists, and the hands over their trousers were named legs. Measured column by column
    across the body (a knee bent forward in a lunge lies higher than the hem of the other leg's shorts).
    ``not_skin``: the pixels not of the person's skin colour (:func:`~.person_fill.not_skin_coloured`); only there
    does the garment count (bare shins the parser calls "pants" are no trousers below a knee)."""
    if keypoints is None or not lower or HAND_OVER_TROUSERS <= 0:
        return
    wrists = {"left leg": 9, "right leg": 10}  # the wrist of the arm on the leg's side
    legs = {name: i for i, name in plan.body.items() if name in KNEES and keypoints[wrists[name], 2] < WRIST_UNSEEN}
    arms = {name: i for i, name in plan.body.items() if name in ("left arm", "right arm")}
    garment = torch.isin(labels, torch.tensor([i + 1 for i in lower]))
    garment = (garment if not_skin is None else garment & not_skin).numpy()
    scale = body_scale(keypoints, threshold)
    if not legs or scale is None or not garment.any():
        return
    axis = body_axis(keypoints, threshold)
    ys, xs = np.mgrid[0:labels.shape[0], 0:labels.shape[1]]
    down = (xs + origin[0]) * axis[0] + (ys + origin[1]) * axis[1]  # how far down the body
    across = np.rint(xs * -axis[1] + ys * axis[0]).astype(np.int64)  # the column across the body
    across -= across.min()
    width = int(across.max()) + 1
    garment_end = np.full(width, -np.inf)
    np.maximum.at(garment_end, across[garment], down[garment])  # how far down the garment reaches, per column
    for name, index in legs.items():
        pieces, count = ndimage.label((labels == index + 1).numpy())
        if count == 0:
            continue
        inside = pieces > 0
        key = (pieces[inside] - 1) * width + across[inside]  # (piece, column)
        piece_end = np.full(count * width, -np.inf)
        np.maximum.at(piece_end, key, down[inside])
        piece_end = piece_end.reshape(count, width)
        spanned = np.isfinite(piece_end)
        dressed = spanned & np.isfinite(garment_end)[None]  # the piece's columns the garment is in at all
        over = dressed & (garment_end[None] > piece_end + HAND_OVER_TROUSERS * scale)
        share = OVER_TROUSERS_SHARE
        hands = np.nonzero((over.sum(1) >= share * dressed.sum(1)) & (dressed.sum(1) >= share * spanned.sum(1))
                           & (over.sum(1) > 0))[0] + 1
        if len(hands):
            arm = arms.get(name.replace("leg", "arm"))
            labels[torch.from_numpy(np.isin(pieces, hands))] = 0 if arm is None else arm + 1


def _past_thigh(shape: tuple[int, int], keypoints: np.ndarray, leg: str, origin: tuple[int, int],
                threshold: float) -> torch.Tensor:
    """Bool crop-local mask: pixels past :data:`THIGH_START` of the way from the leg's hip to its knee (projected
    on that line); all True when the hip is unsure (the thigh's start is unknown)."""
    hip, knee = keypoints[HIPS[leg]], keypoints[KNEES[leg]]
    if hip[2] < threshold:
        return torch.ones(shape, dtype=torch.bool)
    axis = knee[:2] - hip[:2]
    length2 = float(axis @ axis)
    if length2 < 1.0:
        return torch.ones(shape, dtype=torch.bool)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    t = ((xs + origin[0] - hip[0]) * axis[0] + (ys + origin[1] - hip[1]) * axis[1]) / length2
    return torch.from_numpy(t >= THIGH_START)


def side_footwear(labels: torch.Tensor, scores: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None,
                   origin: tuple[int, int], threshold: float) -> None:
    """In crop-local ``labels``: the pixels of ``plan.shoes`` (all footwear) take the side of the leg whose seen
    ankle they are at (:data:`~.scoring.FOOTWEAR_SIDES`, :data:`SHOE_REACH`; in place); elsewhere, and on a side nobody
    asked for, they stay ``shoes`` (hidden unless asked for). Without keypoints the parser's better-scored side
    (``scores``) names them."""
    if plan.shoes is None:
        return
    mask = labels == plan.shoes + 1
    if not bool(mask.any()):
        return
    if keypoints is None:
        sides = list(plan.feet)
        labels[mask] = torch.tensor(sides)[scores[sides].argmax(0)[mask]] + 1
        return
    legs = ("left leg", "right leg")
    split = torch.from_numpy(split_by_limbs(mask.numpy(), keypoints, threshold=threshold, regions=legs,
                                            origin=origin))
    scale = body_scale(keypoints, threshold)
    ys, xs = np.mgrid[0:labels.shape[0], 0:labels.shape[1]]
    for index, leg in plan.feet.items():
        ankle = keypoints[ANKLES[leg]]
        if scale is None or ankle[2] < threshold:
            continue
        near = np.hypot(xs + origin[0] - ankle[0], ys + origin[1] - ankle[1]) <= SHOE_REACH * scale
        labels[(split == legs.index(leg)) & torch.from_numpy(near)] = index + 1


def _beyond_head(split: torch.Tensor, face: int, unclaimed: int, keypoints: np.ndarray, origin: tuple[int, int],
                 threshold: float) -> None:
    """In ``split`` (:func:`split_by_limbs`' crop-local regions), pixels of the ``face`` region farther than
    :data:`FACE_SPANS` head spans from the person's nearest confident head keypoint become ``unclaimed`` (in
    place). The face capsule's radius follows the body's size; the head's own span bounds a face more tightly
    (a fist raised just above a head)."""
    span = head_span(keypoints, threshold)
    ys, xs = torch.nonzero(split == face, as_tuple=True)
    if span is None or len(ys) == 0:
        return
    far = torch.from_numpy(_head_distance(ys.numpy(), xs.numpy(), keypoints, origin, threshold) > FACE_SPANS * span)
    split[ys[far], xs[far]] = unclaimed


def _head_distance(ys: np.ndarray, xs: np.ndarray, keypoints: np.ndarray, origin: tuple[int, int],
                   threshold: float) -> np.ndarray:
    """Each crop-local pixel's (``ys``, ``xs``) distance to the person's nearest confident nose, eye or ear."""
    head = keypoints[:5][keypoints[:5, 2] >= threshold, :2] - np.asarray(origin, dtype=np.float64)
    return np.min(np.hypot(xs[:, None] - head[None, :, 0], ys[:, None] - head[None, :, 1]), 1)


def _hand_zones(shape: tuple[int, int], keypoints: np.ndarray, origin: tuple[int, int], threshold: float
                ) -> dict[str, np.ndarray]:
    """Crop-local bool zone (:func:`~spectrum_parsing.limbs.hand_zone`, 0.15 forearm back) of each arm ("left
    arm", "right arm") whose wrist and elbow are sure and at least 3 px apart."""
    zones = {}
    for name, (wrist, elbow) in (("left arm", (9, 7)), ("right arm", (10, 8))):
        w, e = keypoints[wrist], keypoints[elbow]
        if min(w[2], e[2]) >= threshold and float(np.hypot(*(w[:2] - e[:2]))) >= 3:
            zones[name] = hand_zone(shape, w[:2], e[:2], back=0.15, origin=origin)
    return zones


def misnamed_hands(labels: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None,
                    origin: tuple[int, int], threshold: float) -> None:
    """In crop-local ``labels``: a connected piece the parser called one of :data:`MISNAMED_HANDS` that lies
    mostly (:data:`HAND_SHARE`) in the zone of one of the person's hands — a raised fist against the sky called
    hair — becomes that arm (in place). Legs are not among them: on studio photos a hand hangs beside the thigh,
    and turning leg pieces there into arms cost 8 points of VITON body mIoU (82.9 -> 75.1)."""
    if keypoints is None:
        return
    arms = {name: i for i, name in plan.body.items() if name in ("left arm", "right arm")}
    sources = [i for i, p in enumerate(plan.prompts)
               if vocabulary.canonical_name(p) in MISNAMED_HANDS and i not in plan.hidden]
    if not sources or not arms:
        return
    zones = {name: zone for name, zone in _hand_zones(tuple(labels.shape), keypoints, origin, threshold).items()
             if name in arms}
    for source in sources:
        pieces, count = ndimage.label((labels == source + 1).numpy())
        if count == 0:
            continue
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        for name, zone in zones.items():
            inside = np.bincount(pieces[zone], minlength=count + 1)
            hands = np.nonzero(inside[1:] >= HAND_SHARE * sizes[1:])[0] + 1
            if len(hands):
                labels[torch.from_numpy(np.isin(pieces, hands))] = arms[name] + 1


def grow_skin(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, crop: np.ndarray | ColourImage,
              person: torch.Tensor, plan: ScoringPlan,
              keypoints: np.ndarray | None, origin: tuple[int, int], threshold: float, distance: float,
              max_radii: float, over_guard: float = 0.0, sure: torch.Tensor | None = None) -> None:
    """In crop-local ``labels``: the person's own pixels (``person`` probability > 0.5) the parser left as
    background, near one of its limbs (``max_radii`` capsule radii) and within ``distance`` standard deviations of
    the colour of the person's own skin the parser did find, become the body part the pose places them in (in
    place); their score in ``best`` is the mean score of that skin. Not under a garment that covers the limb,
    unless within ``over_guard`` standard deviations of that colour (:func:`_skin_under_guard`); pixels under a
    garment that does not cover the limb grow too (:func:`_misworn_skin`); pieces of that colour mostly off the
    person never do (:func:`_skin_coloured_surroundings`). ``sure``: the person mask proper (without the limb band),
    where given: legs grow only inside it (the pose guesses legs behind a desk of the skin's colour: the bundled
    group photo), arms also in the band, where they continue the person's skin inside it
    (:func:`_unanchored_growth`). A leg grows only where its knee or ankle is seen, not from a lone hip (the bundled
    two-dancers photo: a beige cardigan's hem below a lone hip became "right leg")."""
    if keypoints is None or not plan.body or not plan.covers or distance <= 0:
        return
    seeds = torch.zeros(labels.shape, dtype=torch.bool)
    for i in plan.skin:
        seeds |= labels == i + 1
    seeds &= person > 0.5  # the person's own skin: a neighbour's arm in the crop has another colour
    colour = skin_colour_distance(crop, seeds.numpy())  # one colour model per person, every threshold from it
    if colour is None:
        return
    before, before_best = (labels.clone(), best.clone()) if sure is not None else (labels, best)
    candidates = (labels == 0) & (person > 0.5)
    hands = torch.zeros(labels.shape, dtype=torch.bool)
    for zone in _hand_zones(tuple(labels.shape), keypoints, origin, threshold).values():
        hands |= torch.from_numpy(zone)  # hands are arms: skin there never grows into a leg
    # where each limb may grow, not under a garment that covers it. asked: no garment the user prompted scores
    # GUARD_SCORE there; free: none at all, hidden ones included
    asked, free = {}, {}
    for limb, idx in plan.covers.items():
        shown = [i for i in idx if i not in plan.aside]
        hidden = [i for i in idx if i in plan.aside]
        asked[limb] = best_of(scores, shown) < GUARD_SCORE if shown else torch.ones(labels.shape, dtype=torch.bool)
        free[limb] = asked[limb] & (best_of(scores, hidden) < GUARD_SCORE) if hidden else asked[limb].clone()
    worn = {limb: torch.from_numpy(np.isin(labels.numpy(), [i + 1 for i in idx])) for limb, idx in plan.covers.items()}
    if over_guard > 0:
        _skin_under_guard(free, asked, colour, candidates, person, over_guard)
        candidates = candidates | _misworn_skin(labels, colour, person, plan.covers, over_guard)
    if "leg" in free:
        free["leg"] &= ~hands
    candidates &= torch.stack(list(free.values())).any(0)
    if not bool(candidates.any()):
        return
    skin_coloured = colour <= distance
    grown = skin_coloured & candidates.numpy() & ~_skin_coloured_surroundings(skin_coloured, person)
    scale = body_scale(keypoints, threshold)
    if not grown.any() or scale is None:
        return
    pieces, count = ndimage.label(grown)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    keep = sizes >= MIN_GROWN_PIECE * scale**2
    keep[0] = False
    grown = keep[pieces]
    regions = list(dict.fromkeys(plan.body.values()))
    target = {name: i for i, name in plan.body.items()}
    split = torch.from_numpy(split_by_limbs(grown, keypoints, threshold=threshold, regions=regions, origin=origin,
                                            max_radii=max_radii))
    regions = [name if name in GROWN_REGIONS else "" for name in regions]
    seed_score = best[seeds].mean()
    capsules, _ = region_capsules(keypoints, threshold)
    for k, name in enumerate(regions):
        limb = name.split()[-1] if name else ""
        if limb not in free:
            continue
        claimed = (split == k) & free[limb] & ~worn[limb]  # never over a garment the parser put on this limb
        if limb == "leg" and sure is not None:  # legs only inside the mask: the pose guesses legs behind a desk
            claimed &= sure
        if limb == "leg" and max(keypoints[KNEES[name], 2], keypoints[ANKLES[name], 2]) < threshold:
            continue  # a lone hip: the thigh the pose runs down from it crosses a coat's hem as often as a leg
        if limb == "leg" and capsules[name]:
            claimed &= torch.from_numpy(_along_limb(claimed.numpy(), capsules[name], origin))
        labels[claimed] = target[name] + 1
        best[claimed] = seed_score
    if sure is not None:
        _unanchored_growth(labels, before, best, before_best, sure, plan)


def _skin_coloured_surroundings(skin_coloured: np.ndarray, person: torch.Tensor) -> np.ndarray:
    """Bool crop-local mask: the connected pieces of ``skin_coloured`` (the pixels of the person's skin colour,
    anywhere in the crop) lying mostly (more than :data:`SURROUNDINGS_SHARE`) off the person (``person`` <= 0.5):
    a wooden desk in front of the legs, whose part inside the person's mask is no skin either."""
    if not skin_coloured.any():
        return skin_coloured
    pieces, count = ndimage.label(skin_coloured)
    off = np.bincount(pieces[(person <= 0.5).numpy()], minlength=count + 1)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    drop = off > SURROUNDINGS_SHARE * sizes
    drop[0] = False
    return drop[pieces]


def _unanchored_growth(labels: torch.Tensor, before: torch.Tensor, best: torch.Tensor, before_best: torch.Tensor,
                       sure: torch.Tensor, plan: ScoringPlan) -> None:
    """Undo (in place) skin grown outside the person mask proper (``sure``: the limb band only) in connected pieces
    of bare skin that hold no skin inside the mask: a shin BlazePose's mask stopped short of continues the knee's
    skin, the corner of a wooden desk across legs the pose guessed behind it continues nothing."""
    skin_ids = torch.tensor([i + 1 for i in plan.skin] + [i + 1 for i in plan.body], dtype=labels.dtype)
    skin = torch.isin(labels, skin_ids).numpy()
    outside = ((labels != before) & ~sure).numpy()
    if not outside.any():
        return
    pieces, count = ndimage.label(skin)
    anchored = np.zeros(count + 1, dtype=bool)
    anchored[np.unique(pieces[skin & sure.numpy()])] = True
    anchored[0] = False
    undo = torch.from_numpy(outside & ~anchored[pieces])
    labels[undo] = before[undo]
    best[undo] = before_best[undo]


def _skin_under_guard(free: dict[str, torch.Tensor], asked: dict[str, torch.Tensor], colour: np.ndarray,
                      candidates: torch.Tensor, person: torch.Tensor, distance: float) -> None:
    """Widen each limb's ``free`` mask (in place) to the ``candidates`` within ``distance`` standard deviations of the
    colour of the person's found skin (``colour``: each pixel's distance to it), even where a hidden garment that
    covers the limb scores :data:`GUARD_SCORE`: on real photos the parser calls a bare shin in shadow "pants". A
    garment the user asked for still guards (``asked``: per limb, where none of them scores that much): the parser
    weighed it against the background there, and beige trousers have the skin's colour. Not for a limb whose
    guarded pixels on the person are more than :data:`OVER_GUARD_SHARE` of that colour (a garment of the skin's
    colour, or a black-and-white photo, where everything is)."""
    on_person = person > 0.5
    strong = torch.from_numpy(colour <= distance)
    for limb, f in free.items():
        guarded = ~f & on_person
        if int(guarded.sum()) and int((strong & guarded).sum()) <= OVER_GUARD_SHARE * int(guarded.sum()):
            free[limb] = f | (strong & candidates & asked[limb])


def _misworn_skin(labels: torch.Tensor, colour: np.ndarray, person: torch.Tensor, covers: dict[str, list[int]],
                  distance: float) -> torch.Tensor:
    """Bool crop-local mask: the person's pixels the parser labelled with a garment (any of ``covers``) that are
    within ``distance`` standard deviations of the colour of its found skin (``colour``: each pixel's distance to
    it) — a bare thigh the parser calls "upper clothes" — for the garments at most :data:`OVER_GUARD_SHARE` of
    whose pixels on the person are of that colour. The caller grows them only into a limb that garment does not
    cover."""
    out = torch.zeros(labels.shape, dtype=torch.bool)
    on_person = (person > 0.5).numpy()
    garments = sorted({i for idx in covers.values() for i in idx})
    dressed = np.isin(labels.numpy(), [i + 1 for i in garments]) & on_person
    if not dressed.any():
        return out
    strong = colour <= distance
    flat = labels.numpy()
    for i in garments:
        pixels = dressed & (flat == i + 1)
        count = int(pixels.sum())
        if count and int((strong & pixels).sum()) <= OVER_GUARD_SHARE * count:
            out |= torch.from_numpy(strong & pixels)
    return out


def _along_limb(mask: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray]], origin: tuple[int, int]
                ) -> np.ndarray:
    """The connected pieces of crop-local ``mask`` that do not lie across the limb: a piece reaching more than
    :data:`ACROSS_LIMB` times as far across the limb's axis (its first joint to its end, ``segments`` in image
    pixels) as along it is dropped (the edge of a desk in front of the legs, not a shin)."""
    axis = segments[-1][1] - segments[0][0]
    length = float(np.hypot(*axis))
    if length < 1.0 or not mask.any():
        return mask
    axis = axis / length
    pieces, count = ndimage.label(mask)
    ys, xs = np.nonzero(pieces)
    ids = pieces[ys, xs]
    along = (xs + origin[0]) * axis[0] + (ys + origin[1]) * axis[1]
    across = -(xs + origin[0]) * axis[1] + (ys + origin[1]) * axis[0]
    keep = np.ones(count + 1, dtype=bool)
    keep[0] = False
    for piece in range(1, count + 1):
        sel = ids == piece
        extent_along = np.ptp(along[sel]) + 1.0
        extent_across = np.ptp(across[sel]) + 1.0
        keep[piece] = extent_across <= ACROSS_LIMB * extent_along
    return keep[pieces]


def carve_hand(labels: torch.Tensor, source: int, target: int, keypoints: np.ndarray | None, origin: tuple[int, int],
           wrist: int, elbow: int, threshold: float) -> None:
    """In crop-local ``labels``, relabel ``source`` pixels near and beyond the wrist as ``target`` (in place)."""
    if keypoints is None:
        return
    w, e = keypoints[wrist], keypoints[elbow]
    if min(w[2], e[2]) < threshold or float(np.hypot(w[0] - e[0], w[1] - e[1])) < 3:
        return
    hand = torch.from_numpy(hand_zone(tuple(labels.shape), w[:2], e[:2], back=0.15, origin=origin))
    labels[(labels == source + 1) & hand] = target + 1
