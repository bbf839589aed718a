"""``spectrum serve``: the JSON API (limits and errors included) and the web page, driven in a real browser."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server tests need the demo extra: pip install -e '.[demo]'")
pytest.importorskip("multipart", reason="the server tests need python-multipart (the demo extra)")
from fastapi.testclient import TestClient  # noqa: E402

from spectrum_parsing.pipeline import ParsingResult, SpectrumPipeline  # noqa: E402
from spectrum_parsing.rle import decode_rle  # noqa: E402
from spectrum_parsing.server import ServerSettings, create_app, load_presets, safe_filename  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZE = (160, 120)  # width, height of the test image


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_pipe(tiny_model_dir) -> SpectrumPipeline:
    """The small random Spectrum model loaded back from disk, as ``spectrum serve --model`` would; bottom-up, so
    the HTTP, queue and load tests spend their time on the server, not on person detection (the top-down path
    is tested in test_pipeline.py and through the server in test_serve_top_down_default)."""
    return SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=128, mode="bottom-up")


@pytest.fixture(scope="module")
def small_jpeg(tmp_path_factory) -> Path:
    """A small copy of the bundled group photo."""
    path = tmp_path_factory.mktemp("img") / "group_small.jpg"
    Image.open(EXAMPLES / "group.jpg").convert("RGB").resize(SIZE).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def client(tiny_pipe):
    with TestClient(create_app(tiny_pipe, ServerSettings(model_name="tiny-random"))) as test_client:
        yield test_client


class FakePipeline:
    """A stand-in pipeline: no persons found, optionally slow, blocking on an event, or failing."""

    def __init__(self, delay: float = 0.0, release: threading.Event | None = None,
                 error: Exception | None = None) -> None:
        self.delay, self.release, self.error = delay, release, error
        self.started = threading.Event()
        self.calls = 0

    def resolve_prompts(self, prompts: Any, ebp: bool) -> list[str]:
        return list(prompts or ["shirt"])

    def __call__(self, image: Image.Image, prompts: Any = None, score_threshold: float = 0.3,
                 ebp: bool = True) -> ParsingResult:
        self.calls += 1
        self.started.set()
        if self.release is not None:
            self.release.wait(10)
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        labels = self.resolve_prompts(prompts, ebp)
        h, w = image.height, image.width
        return ParsingResult([], np.zeros((h, w), np.int32), labels, [*labels, "person"], h, w)


def upload(path_or_bytes: Path | bytes, name: str = "photo.jpg", content_type: str = "image/jpeg",
           **fields: str) -> dict[str, Any]:
    """``files=`` for a multipart POST: the image plus text fields."""
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return {"image": (name, data, content_type), **{k: (None, v) for k, v in fields.items()}}


def png(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def assert_error(response: Any, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and fragment in body["error"], body
    assert "Traceback" not in response.text


# ---------------------------------------------------------------------------------------------------- API
def test_parse_returns_the_result_with_masks_and_maps(client, small_jpeg):
    response = client.post("/api/parse", files=upload(small_jpeg, prompts="shirt, hat,, shirt", score_threshold="0"))
    assert response.status_code == 200, response.text
    data = response.json()
    w, h = SIZE
    assert (data["width"], data["height"]) == (w, h) and data["image"] == "photo.jpg"
    assert data["prompts"][:2] == ["shirt", "hat"] and data["score_threshold"] == 0.0 and data["model"] == "tiny-random"
    assert data["persons"], "the tiny model should find persons at threshold 0"
    for person in data["persons"]:
        assert decode_rle(person["segmentation"]).shape == (h, w)
        for part in person["parts"]:
            assert part["label"] in data["labels"].values()
            assert decode_rle(part["segmentation"]).shape == (h, w)
    label_png, ids_png, persons_png = (png(data[k]) for k in ("label_map_png", "label_ids_png", "person_map_png"))
    assert label_png.mode == "P" and ids_png.mode == "L" and persons_png.mode == "L"
    assert label_png.size == ids_png.size == persons_png.size == (w, h)
    labels, person_map = np.array(ids_png), np.array(persons_png)
    assert np.array_equal(np.array(label_png), labels)
    assert set(np.unique(labels)) <= {0, *map(int, data["labels"])} and labels.any()
    assert person_map.max() <= len(data["persons"]) and not labels[person_map == 0].any()
    for k, person in enumerate(data["persons"], start=1):  # every pixel of person k is inside its mask
        assert decode_rle(person["segmentation"])[person_map == k].all()
    assert set(data["colors"]) == {"0", *data["labels"]} and data["colors"]["0"] == [0, 0, 0]
    overlay = png(data["overlay_png"])
    assert overlay.width == w and overlay.height > h  # the legend below


def test_info_health_and_page(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/info").json()
    assert info["model"] == "tiny-random" and info["default_prompts"] == ["shirt", "hat"]
    assert info["presets"] == load_presets()
    assert info["limits"]["max_upload_bytes"] == 10 * 2**20 and info["limits"]["max_pixels"] == 25_000_000
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'id="view"' in html and 'id="file"' in html and "/api/parse" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    assert_error(client.get("/nowhere"), 404, "Not Found")


def test_presets_when_available_and_when_absent(client, small_jpeg, monkeypatch):
    presets = load_presets()
    if presets:
        name = next(iter(presets))
        response = client.post("/api/parse", files=upload(small_jpeg, preset=name.upper(), score_threshold="0.5"))
        assert response.status_code == 200, response.text
        assert list(response.json()["prompts"][: len(presets[name])]) == presets[name]
    assert_error(client.post("/api/parse", files=upload(small_jpeg, preset="no-such-preset")), 422, "preset")
    monkeypatch.setitem(sys.modules, "spectrum_parsing.presets", None)  # the module is absent
    assert load_presets() == {}
    with TestClient(create_app(FakePipeline())) as bare:
        assert bare.get("/api/info").json()["presets"] == {}
        assert_error(bare.post("/api/parse", files=upload(small_jpeg, preset="lip")), 422, "not available")


def test_odd_uploads_names_and_modes(client):
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50), 128 * 257, dtype=np.uint16)).save(buffer, format="PNG")
    response = client.post("/api/parse", files=upload(buffer.getvalue(), name="../../etc/passwd\x00.png",
                                                      content_type="image/png", prompts="shirt"))
    assert response.status_code == 200, response.text
    name = response.json()["image"]
    assert name.startswith("passwd") and "/" not in name and ".." not in name and response.json()["width"] == 50
    assert safe_filename("..\\..\\boot.ini") == "boot.ini" and safe_filename("a/b\x07c.png") == "bc.png"
    assert safe_filename("..") is None and safe_filename("") is None and len(safe_filename("x" * 999)) == 255
    buffer = io.BytesIO()
    Image.new("RGB", (5, 40)).save(buffer, format="PNG")
    assert_error(client.post("/api/parse", files=upload(buffer.getvalue(), content_type="image/png")), 422,
                 "too small")
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    response = client.post("/api/parse", files=upload(buffer.getvalue(), name="a.gif", content_type="image/gif"))
    assert response.status_code == 200 and response.json()["width"] == 32


def test_bad_requests_are_json_errors(client, small_jpeg):
    assert_error(client.post("/api/parse", files={"prompts": (None, "shirt")}), 422, "missing the image")
    assert_error(client.post("/api/parse", files=upload(b"hello, I am text", "notes.jpg")), 415, "not an image")
    assert_error(client.post("/api/parse", json={"image": "x"}), 415, "multipart/form-data")
    truncated = small_jpeg.read_bytes()[:1500]
    assert_error(client.post("/api/parse", files=upload(truncated)), 422, "could not be decoded")
    for bad in ("abc", "1.5", "-0.1", "nan"):
        assert_error(client.post("/api/parse", files=upload(small_jpeg, score_threshold=bad)), 422, "threshold")
    assert_error(client.post("/api/parse", files=upload(small_jpeg, ebp="maybe")), 422, "ebp")
    many = ",".join(f"p{i}" for i in range(100))
    assert_error(client.post("/api/parse", files=upload(small_jpeg, prompts=many)), 422, "too many prompts")
    assert_error(client.post("/api/parse", files=upload(small_jpeg, prompts="person", ebp="no")), 422, "prompt")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_size_limits(small_jpeg):
    settings = ServerSettings(max_upload_bytes=20_000, max_pixels=SIZE[0] * SIZE[1] - 1)
    before = Image.MAX_IMAGE_PIXELS
    with TestClient(create_app(FakePipeline(), settings)) as limited:
        assert settings.max_pixels == Image.MAX_IMAGE_PIXELS  # Pillow's bomb guard follows the setting
        assert_error(limited.post("/api/parse", files=upload(os.urandom(300_000))), 413, "upload too large")
        # within the body allowance but over the file limit: refused after the form is read
        assert_error(limited.post("/api/parse", files=upload(os.urandom(30_000))), 413, "upload too large")
        assert_error(limited.post("/api/parse", files=upload(small_jpeg)), 413, "megapixels")
        bomb = io.BytesIO()
        Image.new("1", (400, 400)).save(bomb, format="PNG")  # over twice the limit: Pillow's own bomb error
        assert_error(limited.post("/api/parse", files=upload(bomb.getvalue(), "b.png")), 413, "too large")
    assert before == Image.MAX_IMAGE_PIXELS


def test_upload_limit_is_enforced_while_reading():
    """A chunked upload without Content-Length is cut off after a few chunks, not read to the end."""
    app = create_app(FakePipeline(), ServerSettings(max_upload_bytes=100_000))
    boundary = b"spectrumboundary"
    chunks = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
              b"Content-Type: image/jpeg\r\n\r\n", *[b"x" * 65536] * 50, b"\r\n--" + boundary + b"--\r\n"]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/parse", "raw_path": b"/api/parse", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", b"multipart/form-data; boundary=" + boundary)],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    sent: list[dict[str, Any]] = []
    consumed = 0

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        if consumed < len(chunks):
            consumed += 1
            return {"type": "http.request", "body": chunks[consumed - 1], "more_body": consumed < len(chunks)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(scenario())
    assert sent[0]["status"] == 413 and b"upload too large" in sent[1]["body"]
    assert consumed <= 4 < len(chunks)


def test_queue_full_is_503_busy(small_jpeg):
    release = threading.Event()
    fake = FakePipeline(release=release)
    settings = ServerSettings(max_concurrency=1, max_queue=1, request_timeout_s=20)
    app = create_app(fake, settings)
    with TestClient(app) as busy, ThreadPoolExecutor(2) as pool:
        first = pool.submit(busy.post, "/api/parse", files=upload(small_jpeg))
        assert fake.started.wait(10)
        second = pool.submit(busy.post, "/api/parse", files=upload(small_jpeg))
        deadline = time.monotonic() + 10
        while app.state.runtime.gate.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        third = busy.post("/api/parse", files=upload(small_jpeg))
        assert_error(third, 503, "busy")
        assert third.headers["retry-after"] == "5"
        release.set()
        assert first.result(10).status_code == 200 and second.result(10).status_code == 200
    assert fake.calls == 2


def test_timeouts_and_internal_errors(small_jpeg):
    slow = FakePipeline(delay=1.0)
    with TestClient(create_app(slow, ServerSettings(request_timeout_s=0.3))) as timed:
        assert_error(timed.post("/api/parse", files=upload(small_jpeg)), 504, "did not finish within 0.3 s")
        # the timed-out call still holds the only worker: the next request cannot get one in time
        assert_error(timed.post("/api/parse", files=upload(small_jpeg)), 503, "no worker became free")
    failing = FakePipeline(error=RuntimeError("secret internals at /srv/x.py line 3"))
    with TestClient(create_app(failing), raise_server_exceptions=False) as broken:
        response = broken.post("/api/parse", files=upload(small_jpeg))
        assert_error(response, 500, "internal error")
        assert "secret" not in response.text
    worded = FakePipeline(error=ValueError("give prompts or a preset, not both"))
    with TestClient(create_app(worded)) as wording:
        assert_error(wording.post("/api/parse", files=upload(small_jpeg)), 422, "not both")


def test_factory_is_called_once_at_startup(small_jpeg):
    made: list[FakePipeline] = []

    def factory() -> FakePipeline:
        made.append(FakePipeline())
        return made[-1]

    app = create_app(factory)
    assert not made  # nothing is loaded when the app is built
    with TestClient(app) as lazy:
        assert len(made) == 1
        for _ in range(2):
            assert lazy.post("/api/parse", files=upload(small_jpeg)).status_code == 200
    assert len(made) == 1 and made[0].calls == 2
    with pytest.raises(ValueError, match="max_concurrency"):
        ServerSettings(max_concurrency=0)


def test_serve_command_builds_the_app(tiny_pipe, monkeypatch, tmp_path):
    from spectrum_parsing.cli import main
    from spectrum_parsing.server import http

    tiny_pipe.model.save_pretrained(tmp_path / "m")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(http, "serve", lambda app, host, port, **kwargs: seen.update(app=app, host=host, port=port,
                                                                                    **kwargs))
    code = main(["serve", "--model", str(tmp_path / "m"), "--port", "7999", "--max-upload-mb", "2",
                 "--max-concurrency", "2", "--device", "cpu", "--header-timeout", "3", "--max-connections", "50"])
    assert code == 0 and seen["host"] == "127.0.0.1" and seen["port"] == 7999
    assert seen["header_timeout_s"] == 3 and seen["max_connections"] == 50 and seen["idle_timeout_s"] == 5
    settings = seen["app"].state.settings
    assert settings.max_upload_bytes == 2 * 2**20 and settings.max_concurrency == 2
    for argv in (["--max-concurrency", "0"], ["--port", "70000"], ["--max-upload-mb", "inf"],
                 ["--header-timeout", "0"]):
        with pytest.raises(SystemExit) as exit_info:  # refused by argparse, before any model loads
            main(["serve", "--model", str(tmp_path / "m"), *argv])
        assert exit_info.value.code == 2
    assert main(["serve", "--model", str(tmp_path / "m"), "--max-connections", "0"]) == 2


# ------------------------------------------------------------------------------------------------ slow clients
def _start(server: Any) -> tuple[threading.Thread, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return thread, sock.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def test_slow_clients_cannot_starve_the_server():
    """Connections whose headers never finish are timed out, and past the cap the longest-waiting one is
    dropped: a fresh health check answers at once under a slowloris flood (uvicorn alone hangs)."""
    from spectrum_parsing.server.http import build_server

    server = build_server(create_app(FakePipeline(), ServerSettings()), "127.0.0.1", 0, header_timeout_s=1.0,
                          idle_timeout_s=1.0, max_connections=20, log_level="warning")
    thread, port = _start(server)
    slow = []
    try:
        for _ in range(60):  # three times the cap, each stuck in its headers
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(b"GET /api/health HTTP/1.1\r\nhost: x\r\nx-slow: ")
            slow.append(conn)
        time.sleep(0.2)
        assert len(server.server_state.connections) <= 20
        start = time.monotonic()
        answer = _get(port, "/api/health")
        assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer and time.monotonic() - start < 1.0
        oldest = slow[0]
        oldest.settimeout(5)
        assert oldest.recv(4096).startswith(b"HTTP/1.1 503")  # dropped to make room, told why
        newest = slow[-1]
        newest.settimeout(5)
        start = time.monotonic()
        assert newest.recv(4096).startswith(b"HTTP/1.1 408")  # the header deadline
        assert 0.3 < time.monotonic() - start < 3.0
        assert _get(port, "/api/health").startswith(b"HTTP/1.1 200")
    finally:
        for conn in slow:
            conn.close()
        server.should_exit = True
        thread.join(15)


# ------------------------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def live_server(tiny_pipe):
    """The real app under uvicorn on a free port of 127.0.0.1, in a background thread."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(tiny_pipe, ServerSettings(model_name="tiny-random")),
                                           log_level="warning", lifespan="on"))
    thread, port = _start(server)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def _bench_server_module() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_server.py"
    spec = importlib.util.spec_from_file_location("bench_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("clients,total", [pytest.param(8, 16, id="8-clients"),
                                           pytest.param(50, 150, id="50-clients", marks=pytest.mark.slow)])
def test_concurrent_clients_get_no_5xx_and_memory_stays_flat(live_server, small_jpeg, clients, total):
    bench = _bench_server_module()
    image = small_jpeg.read_bytes()
    bench.run_load(live_server, image, clients=4, total=12)  # warm-up
    before = bench.rss_mb(os.getpid())
    first = bench.run_load(live_server, image, clients=clients, total=total, timeout=120)
    second = bench.run_load(live_server, image, clients=clients, total=total, timeout=120)
    after = bench.rss_mb(os.getpid())
    for run in (first, second):
        assert run["statuses"] == {200: total} and run["client_errors"] == 0, run
        assert run["p95_s"] < 60
    assert after - before < 150, f"RSS grew from {before:.0f} to {after:.0f} MiB over {2 * total} requests"


def _browser_or_skip() -> Any:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    return sync_playwright


def _uniform_pixel(labels: np.ndarray, persons: np.ndarray, want_label: bool) -> tuple[int, int] | None:
    """A pixel whose 5x5 neighbourhood has one label and one person (labelled or background as asked)."""
    h, w = labels.shape
    for y in range(2, h - 2):
        for x in range(2, w - 2):
            if bool(labels[y, x]) != want_label:
                continue
            lab, per = labels[y - 2:y + 3, x - 2:x + 3], persons[y - 2:y + 3, x - 2:x + 3]
            if (lab == labels[y, x]).all() and (per == persons[y, x]).all():
                return x, y
    return None


def test_browser_upload_run_hover_toggle_download(live_server, small_jpeg, tmp_path):
    sync_playwright = _browser_or_skip()
    from playwright.sync_api import expect

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(accept_downloads=True, viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(live_server + "/")
            expect(page.locator("#model-name")).to_have_text("model: tiny-random")
            expect(page.locator("#preset-row")).to_be_visible(visible=bool(load_presets()))

            # drag and drop sets the file too (a synthetic drop event carrying a File)
            page.evaluate("""() => { const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array(2048)], "dropped.png", {type: "image/png"}));
                document.getElementById("dropzone").dispatchEvent(new DragEvent("drop", {dataTransfer: dt})); }""")
            expect(page.locator("#file-name")).to_contain_text("dropped.png")

            page.set_input_files("#file", str(small_jpeg))
            expect(page.locator("#file-name")).to_contain_text(small_jpeg.name)
            page.fill("#prompts", "shirt, hat")
            page.fill("#threshold", "0")
            with page.expect_response(lambda r: r.url.endswith("/api/parse")) as response_info:
                page.click("#run")
            data = response_info.value.json()
            page.wait_for_selector("body[data-state=done]", timeout=30_000)
            assert response_info.value.status == 200 and not errors

            w, h = SIZE
            natural = page.evaluate("() => { const i = document.getElementById('overlay');"
                                    " return [i.complete, i.naturalWidth, i.naturalHeight]; }")
            assert natural[0] and natural[1] == w and natural[2] > h  # decoded, legend below
            assert page.evaluate("() => [view.width, view.height]") == [w, h]

            labels = np.array(png(data["label_ids_png"]))
            persons = np.array(png(data["person_map_png"]))
            box = page.locator("#view").bounding_box()
            assert box is not None

            def hover(x: int, y: int) -> None:
                page.mouse.move(box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h)

            def canvas_pixel(x: int, y: int) -> list[int]:
                return page.evaluate("([x, y]) => Array.from(view.getContext('2d').getImageData(x, y, 1, 1).data)",
                                     [x, y])

            part_at = _uniform_pixel(labels, persons, want_label=True)
            assert part_at is not None, "the tiny model should label some pixels at threshold 0"
            x, y = part_at
            person = data["persons"][persons[y, x] - 1]
            hover(x, y)
            label = data["labels"][str(labels[y, x])]
            expect(page.locator("#tooltip")).to_have_text(f"{label} · person {person['id']}")
            background = _uniform_pixel(labels, persons, want_label=False)
            if background is not None and not persons[background[1], background[0]]:
                hover(*background)
                expect(page.locator("#tooltip")).to_have_text("background")

            # hiding the person under the cursor removes its colours at that pixel
            tinted = canvas_pixel(x, y)
            page.uncheck(f"#person-list input[data-key='person-{person['id']}']")
            plain = canvas_pixel(x, y)
            assert plain != tinted
            page.check(f"#person-list input[data-key='person-{person['id']}']")
            assert canvas_pixel(x, y) == tinted
            page.uncheck(f"#part-list input[data-key='label-{labels[y, x]}']")
            assert canvas_pixel(x, y) == plain

            with page.expect_download() as download_info:
                page.click("#download-json")
            saved = tmp_path / "result.json"
            download_info.value.save_as(saved)
            downloaded = json.loads(saved.read_text())
            assert download_info.value.suggested_filename == "group_small.json"
            assert downloaded["persons"] == data["persons"] and downloaded["labels"] == data["labels"]
            assert not [k for k in downloaded if k.endswith("_png")]
            href = page.get_attribute("#download-labelmap", "href")
            assert href == "data:image/png;base64," + data["label_map_png"]

            # try-on masks: chosen in the form, one agnostic mask and one LIP label map per person to download
            page.select_option("#tryon", "upper")
            with page.expect_response(lambda r: r.url.endswith("/api/parse")) as response_info:
                page.click("#run")
            data = response_info.value.json()
            page.wait_for_selector("body[data-state=done]", timeout=30_000)
            links = page.locator("#download-tryon a")
            expect(links).to_have_count(2 * len(data["persons"]))
            with page.expect_download() as download_info:
                links.first.click()
            assert download_info.value.suggested_filename == "group_small_person0_agnostic_upper.png"
            download_info.value.save_as(tmp_path / "agnostic.png")
            mask = np.array(Image.open(tmp_path / "agnostic.png"))
            assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
            assert not errors, errors
        finally:
            browser.close()


def test_tryon_field_returns_each_persons_masks(tiny_model_dir, small_jpeg):
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    with TestClient(create_app(pipe, ServerSettings(model_name="tiny-random"))) as client:
        files = {"image": ("g.jpg", small_jpeg.read_bytes(), "image/jpeg")}
        ok = client.post("/api/parse", files=files, data={"prompts": "shirt, pants", "tryon": "lower"})
        bad = client.post("/api/parse", files=files, data={"tryon": "hat"})
        none = client.post("/api/parse", files=files, data={"prompts": "shirt"})
    assert ok.status_code == 200, ok.text
    data = ok.json()
    assert [t["person"] for t in data["tryon"]] == [p["id"] for p in data["persons"]]
    first = data["tryon"][0]
    assert first["garment"] == "lower" and png(first["agnostic_png"]).size == (data["width"], data["height"])
    assert set(np.unique(np.array(png(first["label_map_png"])))) <= set(range(20))  # LIP ids
    assert bad.status_code == 422 and none.json().get("tryon") is None


def test_serve_top_down_default(tiny_model_dir, small_jpeg):
    """The server runs whatever pipeline it is given: the top-down default finds the 5 people of the photo."""
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64)
    assert pipe.mode == "top-down"
    with TestClient(create_app(pipe, ServerSettings(model_name="tiny-random"))) as client:
        response = client.post("/api/parse", files={"image": ("g.jpg", small_jpeg.read_bytes(), "image/jpeg")},
                               data={"prompts": "shirt"})
    assert response.status_code == 200, response.text
    assert len(response.json()["persons"]) == 5


def test_openapi_describes_the_form_and_the_answers():
    """The form is FastAPI ``File``/``Form`` parameters and every answer a pydantic model, so the published schema
    is generated, not hand-written."""
    app = create_app(FakePipeline(), ServerSettings())
    schema = app.openapi()
    post = schema["paths"]["/api/parse"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][form]["properties"]
    assert set(fields) == {"image", "prompts", "preset", "score_threshold", "ebp", "tryon"}
    assert schema["components"]["schemas"][form]["required"] == ["image"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/ParseResponse") and "413" in post["responses"] and "422" in post["responses"]
    answer_fields = schema["components"]["schemas"]["ParseResponse"]["properties"]
    assert {"persons", "labels", "overlay_png", "label_map_png"} <= set(answer_fields)
