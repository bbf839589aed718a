"""``spectrum serve``: a web demo and JSON API around :class:`~spectrum_parsing.pipeline.SpectrumPipeline`.

    from spectrum_parsing.server import ServerSettings, create_app
    app = create_app(lambda: SpectrumPipeline.from_pretrained(), ServerSettings(max_concurrency=1))
    # uvicorn.run(app, host="127.0.0.1", port=7860)

Nothing is loaded at import: a pipeline factory runs once, at application startup (a pipeline object can also be
given directly, as tests do). Needs the ``demo`` extra (FastAPI, uvicorn, python-multipart).

Endpoints
---------
``GET /``
    A single self-contained HTML page (inline CSS and JS, nothing fetched from elsewhere): upload or drop an
    image, type prompts or pick a preset, Run; the parsed image is shown with the part and person under the
    cursor, checkboxes toggle persons and parts, and links download the label-map PNG, the overlay and the JSON.
``GET /api/health``
    ``{"status": "ok"}`` once the model is loaded (503 before).
``GET /api/info``
    ``{"model": str, "version": str, "default_prompts": [str], "presets": {name: [prompt, ...]},
    "limits": {"max_upload_bytes", "max_pixels", "max_concurrency", "max_queue", "request_timeout_s",
    "max_prompts", "max_prompt_chars"}}``. ``presets`` is empty where :mod:`spectrum_parsing.presets` is absent.
``POST /api/parse``
    ``multipart/form-data`` with the fields

    - ``image`` (file, required): JPEG, PNG, WebP, BMP, GIF (first frame), TIFF or MPO; sniffed from the bytes,
      the declared content type and file name are not trusted. EXIF orientation is applied.
    - ``prompts`` (optional): comma- (or newline-) separated prompts; empty = the model's default prompts.
    - ``preset`` (optional): a preset name from ``/api/info`` (a dataset label scheme); not combinable with
      ``prompts`` where the pipeline supports presets natively.
    - ``score_threshold`` (optional, default 0.3): parts whose mean score is below this are dropped, in [0, 1].
    - ``ebp`` (optional, default true): add the expanded body-part prompts (``true``/``false``).

    The answer is :meth:`ParsingResult.to_dict() <spectrum_parsing.pipeline.ParsingResult.to_dict>` plus::

        {
          "image": str,                 # the uploaded file name
          "height": int, "width": int,  # of the image after EXIF orientation; every map below has this size
          "prompts": [str],             # every prompt scored (user's or preset's, EBP additions, "person")
          "labels": {"<id>": str},      # label id (pixel value of the label map) -> label name
          "persons": [{"id": int, "score": float, "box": [x0, y0, x1, y1],        # x1, y1 exclusive
                       "segmentation": {"size": [h, w], "counts": str},          # COCO RLE (pycocotools)
                       "parts": [{"label": str, "score": float, "box": [...], "segmentation": {...}, ...}]}],
          ...                           # any further keys of to_dict() (e.g. "preset", "coco")
          "colors": {"<id>": [r, g, b]},  # colour of each label id in label_map_png ("0": the background)
          "score_threshold": float, "model": str, "elapsed_ms": float,               # model call, decode to encode
          "overlay_png": str,           # base64 PNG: the image with parts blended in, person boxes, a legend
          "label_map_png": str,         # base64 palette PNG: pixel value = label id (as ``spectrum parse``)
          "label_ids_png": str,         # base64 8-bit grey PNG: the same ids without a palette (for browsers)
          "person_map_png": str         # base64 8-bit grey PNG: k = persons[k - 1] (first listed wins), 0 = none
        }

Errors are ``{"error": "<message>"}`` with: 400 malformed multipart, 408 upload too slow, 413 upload or image
too large, 415 not a multipart request or not a supported image, 422 missing image or invalid field, 503 busy
(queue full, or no worker free within the timeout; with ``Retry-After``), 504 the model took longer than the
timeout, 500 anything else (logged; no traceback is ever sent).

Limits (:class:`ServerSettings`)
--------------------------------
Upload size is counted while the body is read (the request is cut off at ``max_upload_bytes`` plus a small
allowance for the form fields, before it is all received; a larger ``Content-Length`` is refused at once).
Image dimensions are read from the header before decoding (``max_pixels``; Pillow's decompression-bomb limit is
set to the same value while the app runs). The model runs in worker threads, at most ``max_concurrency`` at
once; at most ``max_queue`` further requests wait, more are refused with 503. A request that waits longer than
``request_timeout_s`` gets 503, one whose model call exceeds it gets 504 (its worker finishes in the background
and keeps its slot until then).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import inspect
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..images import ImageLoadError, ImageTooLargeError, check_image_size
from ..images import decode_image as decode_images_rgb
from ..prompts import clean_prompts
from ..writers import PNG_COMPRESS_LEVEL
from .schemas import ErrorResponse, HealthResponse, InfoResponse, ParseResponse

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO")
"""Pillow formats accepted for uploads (no EPS/PDF or other formats that call out to external programs)."""

FORM_OVERHEAD_BYTES = 64 * 1024
"""Allowance over ``max_upload_bytes`` for multipart boundaries, headers and the text fields."""

T = TypeVar("T")


@runtime_checkable
class ParsingPipeline(Protocol):
    """What the server needs of a pipeline (:class:`SpectrumPipeline` or a test double)."""

    def __call__(self, images: Any, prompts: Any = None, *args: Any, **kwargs: Any) -> Any:
        ...

    def resolve_prompts(self, prompts: Any, ebp: bool) -> list[str]:
        ...


@dataclass(frozen=True)
class ServerSettings:
    """Limits and defaults of the server (see the module docstring)."""

    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_concurrency: int = 1
    max_queue: int = 64
    request_timeout_s: float = 120.0
    max_prompts: int = 64
    max_prompt_chars: int = 100
    default_score_threshold: float = 0.3
    model_name: str = "spectrum"
    set_pillow_limit: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_concurrency", "max_prompts", "max_prompt_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_queue < 0:
            raise ValueError(f"ServerSettings.max_queue must be >= 0, got {self.max_queue}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"ServerSettings.request_timeout_s must be > 0, got {self.request_timeout_s}")
        if not 0.0 <= self.default_score_threshold <= 1.0:
            raise ValueError("ServerSettings.default_score_threshold must be in [0, 1], "
                             f"got {self.default_score_threshold}")

    def limits(self) -> dict[str, Any]:
        """The limits as shown by ``/api/info``."""
        data = asdict(self)
        return {k: data[k] for k in ("max_upload_bytes", "max_pixels", "max_concurrency", "max_queue",
                                     "request_timeout_s", "max_prompts", "max_prompt_chars")}


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class _BodyTooLarge(Exception):
    """Raised from the counting ``receive`` once the request body passes its limit."""


# ----------------------------------------------------------------------------------------------------- presets
def _presets_module() -> Any:
    """:mod:`spectrum_parsing.presets`, or None where it is absent or fails to import."""
    try:
        return importlib.import_module("..presets", __package__)
    except ImportError:
        return None
    except Exception as err:  # a broken presets module must not take the demo down
        logger.warning("presets unavailable: %s", err)
        return None


def load_presets() -> dict[str, list[str]]:
    """Preset name -> prompts from :mod:`spectrum_parsing.presets`; empty if that module is absent or unusable."""
    table = getattr(_presets_module(), "PRESETS", None)
    if not isinstance(table, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for name, preset in table.items():
        prompts = getattr(preset, "prompts", preset)
        if isinstance(prompts, (list, tuple)) and prompts and all(isinstance(p, str) for p in prompts):
            out[str(name)] = list(prompts)
    return out


def resolve_preset(name: str, presets: Mapping[str, list[str]]) -> str:
    """The canonical name of preset ``name`` (exact, case-insensitive, or an alias the presets module knows)."""
    if not presets:
        raise ApiError(422, "presets are not available on this server")
    if name in presets:
        return name
    key = name.strip().lower().replace("_", "-")
    if key in presets:
        return key
    get_preset = getattr(_presets_module(), "get_preset", None)
    if callable(get_preset):
        try:
            canonical = str(get_preset(name).name)
        except Exception:  # any failure means "unknown" below
            canonical = ""
        if canonical in presets:
            return canonical
    raise ApiError(422, f"unknown preset {name!r}; choose one of: {', '.join(presets)}")


# ------------------------------------------------------------------------------------------------ form fields
def parse_prompts(text: str | None, settings: ServerSettings) -> list[str] | None:
    """Comma- or newline-separated prompts, cleaned by :func:`~spectrum_parsing.prompts.clean_prompts` with the
    server's limits (422 naming the prompt otherwise); None when there are none."""
    prompts = [p for p in (text or "").replace("\n", ",").split(",") if p.strip()]
    if not prompts:
        return None
    try:
        return clean_prompts(prompts, settings.max_prompts, settings.max_prompt_chars)
    except ValueError as err:
        raise ApiError(422, str(err)) from None


class UploadGuard:
    """ASGI middleware in front of ``POST /api/parse``, before FastAPI parses the form: a declared
    ``Content-Length`` above the limit is refused at once (413), a body that is not multipart gets 415, and the
    body is counted while it arrives (413 as soon as it passes ``max_upload_bytes`` plus the form allowance, before
    it is all received) and must be complete within ``request_timeout_s`` (408)."""

    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != "/api/parse":
            await self.app(scope, receive, send)
            return
        settings = self.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        limit = settings.max_upload_bytes + FORM_OVERHEAD_BYTES
        too_large = (413, f"upload too large: the limit is {settings.max_upload_bytes / 2**20:.1f} MB")
        length = headers.get("content-length", "")
        if length.strip().isdigit() and int(length) > limit:
            await _send_json(send, *too_large)
            return
        if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
            await _send_json(send, 415, "send multipart/form-data with the image in a file field named 'image'")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.request_timeout_s
        state: dict[str, Any] = {"received": 0, "complete": False, "error": None, "started": False}

        async def counted() -> Any:
            if state["complete"]:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(1e-3, deadline - loop.time()))
            except asyncio.TimeoutError:
                state["error"] = (408, f"the upload did not finish within {settings.request_timeout_s:g} s")
                raise _BodyTooLarge from None
            if message.get("type") == "http.disconnect":
                state["error"] = (400, "the client disconnected during the upload")
            elif message.get("type") == "http.request":
                state["received"] += len(message.get("body", b""))
                state["complete"] = not message.get("more_body", False)
                if state["received"] > limit:
                    state["error"] = too_large
                    raise _BodyTooLarge
            return message

        async def answer(message: Any) -> None:
            if state["error"] is None:  # the app's own answer; dropped when the upload itself failed
                state["started"] = True
                await send(message)

        with contextlib.suppress(_BodyTooLarge, ClientDisconnect):
            await self.app(scope, counted, answer)
        if state["error"] is not None and not state["started"]:
            await _send_json(send, *state["error"])


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------------------ images
def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) an upload as an image of an allowed format and size; 413/415/422 otherwise."""
    if not data:
        raise ApiError(422, "the uploaded image is empty")
    Image.init()  # registers every plugin (only a few are before the first open), so `formats` can name them
    try:
        image = Image.open(io.BytesIO(data), formats=[f for f in ALLOWED_FORMATS if f in Image.OPEN])
    except Image.DecompressionBombError as err:
        raise ApiError(413, f"image too large: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError):
        raise ApiError(415, "the upload is not an image in a supported format "
                            f"({', '.join(f.lower() for f in ALLOWED_FORMATS)})") from None
    try:
        check_image_size(*image.size, max_pixels=max_pixels, name="the image")
    except ImageLoadError as err:
        raise _image_error(err) from None
    return image


def decode_image(image: Image.Image) -> Image.Image:
    """Decode an opened upload to RGB by the CLI's rules (:func:`spectrum_parsing.images.decode_image`: first
    frame, EXIF orientation, alpha over white, 16-bit scaled); 413 for a decompression bomb, 422 if corrupt."""
    try:
        return decode_images_rgb(image, "the image")
    except ImageLoadError as err:
        raise _image_error(err) from None


def _image_error(err: ImageLoadError) -> ApiError:
    """413 for an image above the limits (or a decompression bomb), 422 for any other unusable image."""
    if isinstance(err, ImageTooLargeError):
        return ApiError(413, f"image too large: {err}")
    return ApiError(422, str(err))


def safe_filename(name: str | None) -> str | None:
    """An upload's file name reduced to a display-safe base name (only echoed back, never used as a path):
    directories (``/`` and ``\\``) dropped, control characters removed, at most 255 characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    if base in ("", ".", ".."):
        return None
    return base[:255]


def png_base64(image: Image.Image) -> str:
    """An image as base64 PNG text."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def person_index_map(result: Any) -> np.ndarray:
    """(H, W) uint8: ``k`` where ``result.persons[k - 1]`` covers the pixel (the first listed wins), 0 elsewhere."""
    if len(result.persons) > 255:
        raise ValueError(f"{len(result.persons)} persons do not fit in an 8-bit person map")
    out = np.zeros((result.height, result.width), dtype=np.uint8)
    for k in range(len(result.persons), 0, -1):
        out[np.asarray(result.persons[k - 1].mask.cpu().numpy(), dtype=bool)] = k
    return out


def build_response(result: Any, image: Image.Image, filename: str | None) -> dict[str, Any]:
    """``result.to_dict()`` plus label colours and the base64 PNGs (see the module docstring)."""
    payload = result.to_dict(filename)
    label_png = result.label_map_image()
    raw = label_png.getpalette() or []
    colours = np.zeros((256, 3), dtype=np.uint8)
    given = np.asarray(raw[:768], dtype=np.uint8).reshape(-1, 3)
    colours[: len(given)] = given
    ids = [0, *(int(k) for k in payload.get("labels", {}))]
    payload["colors"] = {str(i): [int(c) for c in colours[i]] for i in ids if 0 <= i < 256}
    label_ids = np.asarray(result.label_map)
    if label_ids.size and (label_ids.min() < 0 or label_ids.max() > 255):
        raise ValueError("label ids above 255 cannot be sent as 8-bit PNG")
    payload["overlay_png"] = png_base64(result.overlay(image))
    payload["label_map_png"] = png_base64(label_png)
    payload["label_ids_png"] = png_base64(Image.fromarray(label_ids.astype(np.uint8), mode="L"))
    payload["person_map_png"] = png_base64(Image.fromarray(person_index_map(result), mode="L"))
    return payload


def tryon_payload(result: Any, garment: str) -> list[dict[str, Any]]:
    """Per person the try-on masks (:mod:`spectrum_parsing.tryon`) as base64 PNGs: the agnostic mask (0/255) and
    the person's LIP-id label map (8-bit grey)."""
    from ..tryon import tryon_masks

    return [{"person": m.person, "garment": m.garment,
             "agnostic_png": png_base64(Image.fromarray(m.agnostic.astype(np.uint8) * 255, mode="L")),
             "label_map_png": png_base64(Image.fromarray(m.label_map, mode="L"))}
            for m in tryon_masks(result, garment)]


# ---------------------------------------------------------------------------------------- bounded model calls
class WorkGate:
    """At most ``concurrency`` calls at once in worker threads, at most ``max_queue`` waiting, with a deadline."""

    def __init__(self, concurrency: int, max_queue: int, timeout_s: float) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.semaphore = asyncio.Semaphore(concurrency)
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="spectrum-model")
        self.waiting = 0
        self.running = 0

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread once one is free; 503 if the queue is full or the wait times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        if self.semaphore.locked() and self.waiting >= self.max_queue:
            raise ApiError(503, f"server busy: {self.running} request(s) running and {self.waiting} waiting; "
                                "try again shortly", {"Retry-After": "5"})
        self.waiting += 1
        acquire = asyncio.ensure_future(self.semaphore.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=self.timeout_s)
        finally:
            self.waiting -= 1
            if not acquire.done():
                acquire.cancel()
        if acquire not in done:
            try:
                await acquire  # it may have been granted just as the wait ended
            except asyncio.CancelledError:
                pass
            else:
                self.semaphore.release()
            raise ApiError(503, f"server busy: no worker became free within {self.timeout_s:g} s; try again later",
                           {"Retry-After": "5"})
        self.running += 1
        try:
            future = loop.run_in_executor(self.executor, fn)
        except BaseException:
            self.running -= 1
            self.semaphore.release()
            raise

        def finished(_: Any) -> None:  # the slot is held until the thread really ends, even after a timeout
            self.running -= 1
            self.semaphore.release()

        future.add_done_callback(finished)
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # silence "never retrieved"
            raise ApiError(504, f"the model did not finish within {self.timeout_s:g} s") from None

    def close(self) -> None:
        """Stop accepting work; running calls finish in the background."""
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Runtime:
    pipeline: Any
    gate: WorkGate
    presets: dict[str, list[str]]
    default_prompts: list[str]
    native_presets: bool


def _accepts_preset(pipeline: Any) -> bool:
    try:
        return "preset" in inspect.signature(pipeline).parameters
    except (TypeError, ValueError):
        return False


def index_html() -> str:
    """The demo page (``server/index.html``: one self-contained file, inline CSS and JS), read once."""
    global _INDEX
    if _INDEX is None:
        _INDEX = (Path(__file__).with_name("index.html")).read_text(encoding="utf-8")
    return _INDEX


_INDEX: str | None = None


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


# --------------------------------------------------------------------------------------------------------- app
def create_app(pipeline: ParsingPipeline | Callable[[], ParsingPipeline],
               settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app. ``pipeline``: a pipeline, or a zero-argument factory called once at startup."""
    settings = settings or ServerSettings()
    is_pipeline = isinstance(pipeline, ParsingPipeline) and not isinstance(pipeline, type)  # a class is a factory
    if not is_pipeline and not callable(pipeline):
        raise TypeError("create_app needs a pipeline or a zero-argument callable returning one")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        previous_limit = Image.MAX_IMAGE_PIXELS
        if settings.set_pillow_limit:
            Image.MAX_IMAGE_PIXELS = settings.max_pixels
        gate = WorkGate(settings.max_concurrency, settings.max_queue, settings.request_timeout_s)
        try:
            if is_pipeline:
                pipe = pipeline
            else:
                start = time.perf_counter()
                pipe = await asyncio.get_running_loop().run_in_executor(gate.executor, pipeline)
                logger.info("model %s loaded in %.1f s", settings.model_name, time.perf_counter() - start)
            try:
                defaults = list(pipe.resolve_prompts(None, ebp=False))
            except Exception:  # a model without usable default prompts still serves explicit ones
                defaults = []
            app.state.runtime = _Runtime(pipe, gate, load_presets(), defaults, _accepts_preset(pipe))
            yield
        finally:
            app.state.runtime = None
            gate.close()
            if settings.set_pillow_limit:
                Image.MAX_IMAGE_PIXELS = previous_limit

    app = FastAPI(title="Spectrum human parsing", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.runtime = None
    app.add_middleware(UploadGuard, settings=settings)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(tuple(e.get("loc", ()))[-1:] == ("image",) for e in errors):
            return _error(422, "missing the image: send it as a file in the form field 'image'")
        details = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg')}" for e in errors)
        return _error(422, f"invalid request: {details}")

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return _error(500, "internal server error")

    def runtime(request: Request) -> _Runtime:
        state = request.app.state.runtime
        if state is None:
            raise ApiError(503, "the model is not loaded")
        return state

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html(), headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    @app.get("/api/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
    async def health(request: Request) -> dict[str, Any]:
        """Liveness: 200 once the model is loaded."""
        runtime(request)
        return {"status": "ok"}

    @app.get("/api/info", response_model=InfoResponse, responses={503: {"model": ErrorResponse}})
    async def info(request: Request) -> dict[str, Any]:
        """Model name, default prompts, presets and limits."""
        state = runtime(request)
        return {"model": settings.model_name, "version": __version__, "default_prompts": state.default_prompts,
                "presets": state.presets, "limits": settings.limits()}

    @app.post("/api/parse", response_model=ParseResponse,
              responses={status: {"model": ErrorResponse} for status in (400, 408, 413, 415, 422, 503, 504)})
    async def parse(request: Request,
                    image: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, ...)")],
                    prompts: Annotated[str | None, Form(description="comma- or newline-separated prompts")] = None,
                    preset: Annotated[str | None, Form(description="a preset name from /api/info")] = None,
                    score_threshold: Annotated[float | None, Form(
                        ge=0.0, le=1.0, allow_inf_nan=False,
                        description="parts whose mean score is below this are dropped")] = None,
                    ebp: Annotated[bool, Form(description="add the expanded body-part prompts")] = True,
                    tryon: Annotated[Literal["upper", "lower", "dress"] | None, Form(
                        description="also return each person's try-on masks for this garment category")] = None,
                    ) -> JSONResponse:
        """Parse one uploaded image (schema in the module docstring)."""
        state = runtime(request)
        data = await image.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ApiError(413, f"upload too large: the limit is {settings.max_upload_bytes / 2**20:.1f} MB")
        filename = safe_filename(image.filename)
        prompt_list = parse_prompts(prompts, settings)
        score_threshold = settings.default_score_threshold if score_threshold is None else score_threshold
        preset_name = (preset or "").strip() or None
        preset = resolve_preset(preset_name, state.presets) if preset_name else None
        kwargs: dict[str, Any] = {"prompts": prompt_list, "score_threshold": score_threshold, "ebp": ebp}
        if preset is not None:
            if state.native_presets:
                kwargs["preset"] = preset
            else:
                kwargs["prompts"] = list(dict.fromkeys([*state.presets[preset], *(prompt_list or [])]))
        opened = open_image(data, settings.max_pixels)
        del data

        def work() -> dict[str, Any]:
            start = time.perf_counter()
            rgb = decode_image(opened)
            result = state.pipeline(rgb, **kwargs)
            payload = build_response(result, rgb, filename)
            if tryon:
                payload["tryon"] = tryon_payload(result, tryon)
            payload.update(score_threshold=score_threshold, model=settings.model_name,
                           elapsed_ms=round(1000 * (time.perf_counter() - start), 1))
            return payload

        try:
            payload = await state.gate.run(work)
        except ApiError:
            raise
        except (ValueError, TypeError) as err:  # bad prompts / preset combinations, worded by the pipeline
            raise ApiError(422, str(err) or type(err).__name__) from None
        except Exception:
            logger.exception("parsing %r failed", filename)
            raise ApiError(500, "internal error while parsing the image") from None
        return JSONResponse(payload)

    return app
