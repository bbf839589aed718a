"""The JSON the server answers, as pydantic models: FastAPI validates every answer against them and publishes
them in ``/api/openapi.json`` (the same fields as :meth:`ParsingResult.to_dict`, plus the images)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorResponse", "HealthResponse", "InfoResponse", "Limits", "ParseResponse", "Part", "Person", "Rle"]


class Rle(BaseModel):
    """A COCO run-length encoded mask (pycocotools' ``decode`` reads it after ``counts.encode()``)."""

    size: list[int] = Field(description="[height, width]")
    counts: str


class Part(BaseModel):
    """A body part or garment of one person."""

    label: str
    label_id: int = Field(description="its pixel value in the label map")
    score: float
    box: list[int] = Field(description="[x0, y0, x1, y1), x1 and y1 exclusive")
    segmentation: Rle


class Person(BaseModel):
    """One person: full-body mask, keypoints where a pose detector found them, parts by descending score."""

    id: int
    score: float
    box: list[int]
    segmentation: Rle
    keypoints: list[list[float]] | None = Field(None, description="17 x [x, y, score] (COCO order)")
    parts: list[Part]


class TryOnMasks(BaseModel):
    """One person's try-on masks (``tryon`` form field)."""

    person: int
    garment: str
    agnostic_png: str = Field(description="base64 8-bit PNG: 255 = what try-on repaints")
    label_map_png: str = Field(description="base64 8-bit grey PNG: the person's LIP ids")


class ParseResponse(BaseModel):
    """The answer of ``POST /api/parse``."""

    model_config = ConfigDict(extra="allow")  # further keys of ParsingResult.to_dict() pass through

    image: str | None = Field(description="the uploaded file name (display-safe)")
    height: int
    width: int
    prompts: list[str] = Field(description="every prompt scored, the person prompt included")
    preset: str | None = None
    labels: dict[str, str] = Field(description="label id -> label name")
    persons: list[Person]
    coco: dict[str, Any] = Field(description="the same persons and parts as a COCO instance-segmentation file")
    colors: dict[str, list[int]] = Field(description="label id -> [r, g, b] in label_map_png ('0': background)")
    score_threshold: float
    model: str
    elapsed_ms: float = Field(description="decode, model call and encoding, in milliseconds")
    overlay_png: str = Field(description="base64 PNG: the image with parts blended in, person boxes, a legend")
    label_map_png: str = Field(description="base64 palette PNG: pixel value = label id")
    label_ids_png: str = Field(description="base64 8-bit grey PNG: the same ids without a palette")
    person_map_png: str = Field(description="base64 8-bit grey PNG: k = persons[k - 1], 0 = no person")
    tryon: list[TryOnMasks] | None = Field(default=None, description="with the tryon field: per person masks")


class Limits(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_concurrency: int
    max_queue: int
    request_timeout_s: float
    max_prompts: int
    max_prompt_chars: int


class InfoResponse(BaseModel):
    """The answer of ``GET /api/info``."""

    model: str
    version: str
    default_prompts: list[str]
    presets: dict[str, list[str]]
    limits: Limits


class HealthResponse(BaseModel):
    status: str


class ErrorResponse(BaseModel):
    """Every error: 4xx for the request, 5xx for the server; never a traceback."""

    error: str
