"""``spectrum serve``: the web demo and JSON API (FastAPI). The app is in :mod:`.app`; the page is the static,
self-contained ``index.html`` beside it."""

from .app import ServerSettings, create_app, load_presets, safe_filename

__all__ = ["ServerSettings", "create_app", "load_presets", "safe_filename"]
