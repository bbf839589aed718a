"""Video input: frame decoding (PyAV), person tracking across frames, and ``parse_video``.

    pipe = SpectrumPipeline.from_pretrained()
    summary = parse_video(pipe, "clip.mp4", "outputs", prompts=["dress"], every=2)

PyAV is an optional dependency: ``pip install "spectrum-parsing[video]"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .postprocess import _pairwise_intersections
from .results import PersonInstance
from .writers import TMP_TAG, atomic_save_image, atomic_write_text, inside, make_tool_folder, safe_name

if TYPE_CHECKING:
    from .pipeline import SpectrumPipeline
    from .results import ParsingResult

__all__ = [
    "VIDEO_SUFFIXES",
    "VIDEO_FORMATS",
    "VideoBackendMissingError",
    "VideoLoadError",
    "VideoInfo",
    "TrackRecord",
    "PersonTracker",
    "is_video",
    "require_av",
    "probe_video",
    "iter_frames",
    "parse_video",
]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm"})
"""File suffixes (lower case) treated as videos by ``spectrum parse``."""

VIDEO_FORMATS = ("png", "overlay", "json", "video")
"""Outputs of :func:`parse_video`: per-frame label-map PNG, overlay PNG and JSON, and the overlay video
(the first three named as in ``spectrum parse --format``)."""

_DEFAULT_FPS = Fraction(25)


class VideoBackendMissingError(ImportError, ValueError):
    """PyAV is not installed (a ValueError too, so the CLI reports it as one clear line)."""


class VideoLoadError(ValueError):
    """A video file that cannot be opened or decoded."""


def require_av() -> Any:
    """The ``av`` module, or a :class:`VideoBackendMissingError` naming the ``video`` extra."""
    try:
        import av
    except ImportError as err:
        raise VideoBackendMissingError(
            "video input needs PyAV: install the 'video' extra, e.g. pip install 'spectrum-parsing[video]'"
        ) from err
    return av


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a video suffix (see :data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """Basic properties of a video's first video stream; ``frames`` is 0 when the container does not say."""

    fps: Fraction
    frames: int
    width: int
    height: int
    duration_s: float | None


def _open(path: str | os.PathLike[str]) -> Any:
    av = require_av()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoLoadError(f"{path} is not a readable video: {err}") from err
    if not container.streams.video:
        container.close()
        raise VideoLoadError(f"{path} has no video stream")
    return container


def _stream_info(container: Any) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = Fraction(rate).limit_denominator(1_000_000) if rate else _DEFAULT_FPS
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    frames = int(stream.frames or 0)
    if frames == 0 and duration:
        frames = int(round(duration * fps))
    return VideoInfo(fps=fps, frames=frames, width=stream.codec_context.width, height=stream.codec_context.height,
                     duration_s=duration)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame rate, (estimated) frame count, size and duration of a video, without decoding it."""
    with _open(path) as container:
        return _stream_info(container)


def iter_frames(path: str | os.PathLike[str], every: int = 1,
                max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, timestamp_s, frame)`` for every ``every``-th frame, at most ``max_frames`` of them.

    ``index`` counts decoded frames from 0; ``frame`` is an (H, W, 3) RGB uint8 array.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0, got {max_frames}")
    if max_frames == 0:
        return
    av = require_av()
    with _open(path) as container:
        info = _stream_info(container)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yielded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every:
                    continue
                time_s = float(frame.time) if frame.time is not None else float(index / info.fps)
                yield index, time_s, frame.to_ndarray(format="rgb24")
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    return
        except av.error.FFmpegError as err:
            raise VideoLoadError(f"failed to decode {path}: {err}") from err


def _masks_tensor(masks: Sequence[torch.Tensor | np.ndarray]) -> torch.Tensor:
    tensors = [m if isinstance(m, torch.Tensor) else torch.from_numpy(np.asarray(m)) for m in masks]
    return torch.stack([t.detach().to("cpu", torch.bool) for t in tensors])


def _iou(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(N, M) mask IoU of bool masks a (N, H, W) and b (M, H, W)."""
    inter = _pairwise_intersections(a, b).double()
    area_a = a.flatten(1).sum(1).double()
    area_b = b.flatten(1).sum(1).double()
    union = area_a[:, None] + area_b[None, :] - inter
    return (inter / union.clamp(min=1)).numpy()


@dataclass
class TrackRecord:
    """The history of one track: where it was first and last seen, and on how many updates."""

    id: int
    first_frame: int
    last_frame: int
    first_time_s: float | None
    last_time_s: float | None
    frames: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class _Track:
    id: int
    mask: torch.Tensor
    missed: int = 0
    keypoints: np.ndarray | None = None


def keypoint_similarity(a: np.ndarray | None, b: np.ndarray | None, min_score: float = 0.3,
                        sigma: float = 0.25) -> float:
    """OKS-like similarity of two poses (17, 3) ``x, y, score``: the mean over keypoints confident in both of
    ``exp(-d^2 / (2 (sigma * scale)^2))``, ``scale`` = the diagonal of ``a``'s confident keypoints (a move of
    20% of a person's height scores 0.73, 40% scores 0.28); 0 when fewer than 3 are confident in both."""
    if a is None or b is None:
        return 0.0
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    valid = (a[:, 2] >= min_score) & (b[:, 2] >= min_score)
    if valid.sum() < 3:
        return 0.0
    scale = float(np.linalg.norm(a[valid, :2].max(0) - a[valid, :2].min(0)))
    if scale <= 0:
        return 0.0
    d2 = ((a[valid, :2] - b[valid, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * (sigma * scale) ** 2)).mean())


class PersonTracker:
    """Keeps person ids stable across frames by matching persons to the previous tracks.

    On each update the current persons are matched to the live tracks (their last seen masks and, when the
    person detector gave them, keypoints) with the Hungarian algorithm on the larger of mask IoU and keypoint
    similarity (:func:`keypoint_similarity`: a fast-moving person whose masks barely overlap between two
    processed frames keeps its id by its pose); pairs below ``min_iou`` are not matched. Unmatched
    persons start new tracks with fresh ids (never reused); a track missing on more than
    ``max_missed`` consecutive updates expires. ``max_missed`` counts updates, i.e. processed
    frames (with ``every=2`` it spans twice as many source frames).
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {min_iou}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._updates = 0
        self.history: dict[int, TrackRecord] = {}
        """Every track ever started, by id."""

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks still alive (seen within the last ``max_missed`` updates)."""
        return [t.id for t in self._tracks]

    def reset(self) -> None:
        """Forget all tracks and the history; ids start again at 0."""
        self._tracks, self._next_id, self._updates = [], 0, 0
        self.history = {}

    def assign(self, masks: Sequence[torch.Tensor | np.ndarray], frame: int | None = None,
               time_s: float | None = None, keypoints: Sequence[np.ndarray | None] | None = None) -> list[int]:
        """Track ids for one frame's person masks (bool (H, W) each), in the order given.

        ``keypoints``: per person (17, 3) ``x, y, score`` or None. ``frame`` (default: the update count) and
        ``time_s`` are only recorded in :attr:`history`.
        """
        poses = list(keypoints) if keypoints is not None else [None] * len(masks)
        frame = self._updates if frame is None else int(frame)
        self._updates += 1
        ids: list[int] = [-1] * len(masks)
        if not masks:
            self._age(set())
            return ids
        current = _masks_tensor(masks)
        matched: set[int] = set()
        if self._tracks:
            previous = torch.stack([t.mask for t in self._tracks])
            if previous.shape[1:] != current.shape[1:]:
                raise ValueError(f"mask size changed from {tuple(previous.shape[1:])} to {tuple(current.shape[1:])}")
            from scipy.optimize import linear_sum_assignment

            iou = _iou(current, previous)
            for r in range(len(poses)):
                for c, track in enumerate(self._tracks):
                    iou[r, c] = max(iou[r, c], keypoint_similarity(poses[r], track.keypoints))
            gated = np.where(iou >= self.min_iou, iou, 0.0)
            for r, c in zip(*linear_sum_assignment(gated, maximize=True)):
                if gated[r, c] > 0:
                    track = self._tracks[c]
                    track.mask, track.missed, track.keypoints = current[r], 0, poses[r]
                    ids[r] = track.id
                    matched.add(int(c))
        self._age(matched)
        for r in range(len(ids)):
            if ids[r] < 0:
                ids[r] = self._next_id
                self._next_id += 1
                self._tracks.append(_Track(ids[r], current[r], keypoints=poses[r]))
                self.history[ids[r]] = TrackRecord(ids[r], frame, frame, time_s, time_s, 0)
            record = self.history[ids[r]]
            record.last_frame, record.last_time_s = frame, time_s
            record.frames += 1
        return ids

    def _age(self, matched: set[int]) -> None:
        """Count a miss for every unmatched track; drop those missing on more than ``max_missed`` updates."""
        for c, track in enumerate(self._tracks):
            if c not in matched:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]

    def update_persons(self, persons: Sequence[PersonInstance], frame: int | None = None,
                       time_s: float | None = None) -> list[PersonInstance]:
        """Copies of ``persons`` (same order, masks and parts shared) whose ``id`` is their track id."""
        ids = self.assign([p.mask for p in persons], frame=frame, time_s=time_s,
                          keypoints=[p.keypoints for p in persons])
        return [p.replace(id=i) for p, i in zip(persons, ids)]

    def update(self, result: ParsingResult, frame: int | None = None, time_s: float | None = None) -> ParsingResult:
        """A copy of ``result`` whose persons carry their track ids (the input is not modified)."""
        return dataclasses.replace(result, persons=self.update_persons(result.persons, frame=frame, time_s=time_s))

    def tracks(self) -> list[TrackRecord]:
        """The history of every track, by id."""
        return [self.history[i] for i in sorted(self.history)]


def _pick_encoder(av: Any) -> str:
    for name in ("h264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises several error types for a missing encoder
            continue
        return name
    raise VideoLoadError("this PyAV build has neither an h264 nor an mpeg4 encoder")


class _VideoWriter:
    """Encodes RGB frames into an mp4 (h264 when available, else mpeg4); odd sizes are padded to even."""

    def __init__(self, path: Path, fps: Fraction, width: int, height: int) -> None:
        av = require_av()
        self._av = av
        self.codec = _pick_encoder(av)
        self.width, self.height = width + width % 2, height + height % 2
        self.frames = 0
        self.path = path
        # renamed to ``path`` by close(): never half-written; a killed run's file is swept by the next run
        self._tmp = path.with_name(f"{TMP_TAG}{os.getpid()}.{path.name}.part")
        self._container = av.open(str(self._tmp), "w", format="mp4")
        self._stream = self._container.add_stream(self.codec, rate=fps)
        self._stream.width, self._stream.height, self._stream.pix_fmt = self.width, self.height, "yuv420p"

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if (h, w) != (self.height, self.width):
            canvas = np.zeros((self.height, self.width, 3), dtype=np.uint8)
            canvas[: min(h, self.height), : min(w, self.width)] = rgb[: self.height, : self.width]
            rgb = canvas
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and publish it under its name."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the unfinished file (an interrupted or failed run publishes no partial video)."""
        with contextlib.suppress(Exception):  # the container may be in any state after an interruption
            self._container.close()
        self._tmp.unlink(missing_ok=True)


def _labels(result: ParsingResult) -> dict[str, str]:
    """The ``labels`` block of the result's JSON (label id -> name), without encoding any mask."""
    empty = dataclasses.replace(result, persons=[])
    return empty.to_dict()["labels"]


def _parsed_frames(pipeline: SpectrumPipeline, path: Path, every: int, max_frames: int | None, batch_size: int,
                   **call: Any) -> Iterator[tuple[int, float, np.ndarray, ParsingResult]]:
    """``(index, time_s, frame, result)`` in frame order, the frames parsed ``batch_size`` at a time."""
    chunk: list[tuple[int, float, np.ndarray]] = []
    frames = iter_frames(path, every=every, max_frames=max_frames)
    while True:
        item = next(frames, None)
        if item is not None:
            chunk.append(item)
        if chunk and (item is None or len(chunk) == batch_size):
            results = pipeline([rgb for _, _, rgb in chunk], batch_size=batch_size, **call)
            for (index, time_s, rgb), result in zip(chunk, results):
                yield index, time_s, rgb, result
            chunk = []
        if item is None:
            return


def parse_video(pipeline: SpectrumPipeline, path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                prompts: Sequence[str] | None = None, every: int = 1, max_frames: int | None = None,
                formats: Collection[str] = VIDEO_FORMATS, ebp: bool = True,
                tracker: PersonTracker | None = None, progress: bool = True, name: str | None = None,
                batch_size: int = 1, **pipeline_kwargs: Any) -> dict[str, Any]:
    """Parse every ``every``-th frame of a video with tracked person ids; returns the summary dict.

    ``pipeline_kwargs`` (e.g. ``preset``, ``label_map``, ``score_threshold``, any
    :class:`~spectrum_parsing.options.ParseOptions` field) go to each ``pipeline(...)`` call.
    ``batch_size`` frames go to the pipeline together (bottom-up: frames share forward passes; top-down: each
    frame's person crops share passes anyway); the prompt embeddings are computed once and cached.

    Writes, for ``OUT = out_dir`` and ``STEM = name`` (default: the video's file stem), every file atomically:

    * ``OUT/STEM/frame_000123.png`` (label map), ``frame_000123_overlay.png`` and ``frame_000123.json``
      (the image JSON plus ``video``, ``frame`` and ``time_s``; person ``id`` = track id), per ``formats``;
    * ``OUT/STEM_overlay.mp4``: the overlays (without legend, source size) at ``fps / every`` (``"video"``);
    * ``OUT/STEM.json``: the summary (frames, fps, tracks with first/last frame), always, and last: its presence
      marks the video as finished (``spectrum parse`` skips it unless ``--overwrite``).
    """
    from tqdm.auto import tqdm

    unknown = set(formats) - set(VIDEO_FORMATS)
    if unknown:
        raise ValueError(f"unknown output formats {sorted(unknown)}; choose from {list(VIDEO_FORMATS)}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    path = Path(path)
    info = probe_video(path)
    out = Path(out_dir)
    name = safe_name(name or path.stem)
    frames_dir = inside(out, out / name)
    video_path = inside(out, out / f"{name}_overlay.mp4")
    per_frame = bool({"png", "overlay", "json"} & set(formats))
    out.mkdir(parents=True, exist_ok=True)
    if per_frame:
        make_tool_folder(frames_dir, out)  # never writes into a folder of the user's that has the same name
    tracker = tracker if tracker is not None else PersonTracker()
    total = math.ceil(info.frames / every) if info.frames else None
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)

    writer: _VideoWriter | None = None
    processed: list[int] = []
    last: ParsingResult | None = None
    bar = tqdm(total=total, desc=path.name, unit="frame", disable=not progress)
    completed = False
    try:
        for index, time_s, rgb, parsed in _parsed_frames(pipeline, path, every, max_frames, batch_size,
                                                         prompts=prompts, ebp=ebp,
                                                         **pipeline_kwargs):
            result = last = tracker.update(parsed, frame=index, time_s=time_s)
            stem = frames_dir / f"frame_{index:06d}"
            if "png" in formats:
                atomic_save_image(result.label_map_image(), stem.with_suffix(".png"))
            if "overlay" in formats or "video" in formats:
                overlay = result.overlay(rgb)
                if "overlay" in formats:
                    atomic_save_image(overlay, Path(f"{stem}_overlay.png"))
                if "video" in formats:
                    if writer is None:
                        writer = _VideoWriter(video_path, info.fps / every, rgb.shape[1], rgb.shape[0])
                    writer.write(np.asarray(overlay)[: rgb.shape[0], : rgb.shape[1]])  # no legend (its size varies)
            if "json" in formats:
                data = result.to_dict(path.name)
                data.update(video=path.name, frame=index, time_s=round(time_s, 6))
                atomic_write_text(stem.with_suffix(".json"), json.dumps(data))
            processed.append(index)
            bar.update(1)
        completed = True
    finally:
        bar.close()
        if writer is not None:
            if completed:
                writer.close()
            else:  # Ctrl-C or an error: no partial overlay video under its final name
                writer.abort()

    summary: dict[str, Any] = {
        "video": path.name,
        "fps": float(info.fps),
        "every": every,
        "output_fps": float(info.fps / every),
        "width": info.width,
        "height": info.height,
        "frames": len(processed),
        "frame_indices": processed,
        "prompts": list(last.prompts) if last is not None else [],
        "labels": _labels(last) if last is not None else {},
        "tracks": [t.to_dict() for t in tracker.tracks()],
        "frames_dir": frames_dir.name if per_frame else None,
        "overlay_video": video_path.name if writer is not None else None,
        "video_codec": writer.codec if writer is not None else None,
    }
    atomic_write_text(out / f"{name}.json", json.dumps(summary, indent=2))
    return summary
