"""Resolve model sources: a local file/directory or a Hugging Face hub id.

Nothing here runs at import or construction time; these helpers are only called by the explicit
``from_pretrained``/``load_*`` functions.
"""

from __future__ import annotations

import os
from pathlib import Path


class ModelLoadError(RuntimeError):
    """A model could not be loaded: missing files, wrong format, or mismatched weights."""


HUB_TIMEOUT_ENV = "SPECTRUM_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT_S = 60.0


def hub_timeout() -> float:
    """Seconds a hub download may take before it is abandoned (``SPECTRUM_HUB_TIMEOUT``, default 60)."""
    try:
        value = float(os.environ.get(HUB_TIMEOUT_ENV, DEFAULT_HUB_TIMEOUT_S))
    except ValueError:
        raise ModelLoadError(f"{HUB_TIMEOUT_ENV} must be a number of seconds, "
                             f"got {os.environ[HUB_TIMEOUT_ENV]!r}") from None
    return value if value > 0 else DEFAULT_HUB_TIMEOUT_S


def _with_deadline(what: str, fn, *args, **kwargs):
    """Run a hub call in a daemon thread and give up after :func:`hub_timeout` seconds with a clear error.

    ``huggingface_hub`` has no overall deadline (a server that accepts the connection and never answers hangs
    it for minutes, whatever its read timeouts); the abandoned thread is a daemon, so it never blocks exit.
    """
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((True, fn(*args, **kwargs)))
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            box.put((False, err))

    threading.Thread(target=run, name=f"hub:{what}", daemon=True).start()
    limit = hub_timeout()
    try:
        ok, value = box.get(timeout=limit)
    except queue.Empty:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise ModelLoadError(f"the hub ({endpoint}) did not answer for {what} within {limit:g} s; check the "
                             f"network or use a local directory (set {HUB_TIMEOUT_ENV} to wait longer)") from None
    if not ok:
        raise value
    return value


def is_local(source: str | os.PathLike[str]) -> bool:
    """True if ``source`` names an existing local file or directory."""
    return Path(source).expanduser().exists()


def resolve_file(source: str, default_names: tuple[str, ...] = ()) -> Path:
    """Return a local path for a file given as a local file, a local directory or a hub reference.

    A local directory is searched for ``default_names`` (relative paths, in order). A hub reference is
    ``owner/repo`` (then ``default_names`` are tried in the repo) or ``owner/repo/path/in/repo.ext``.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in default_names:
            if (path / name).is_file():
                return path / name
        raise ModelLoadError(f"{source}: none of {list(default_names)} found in this directory")
    parts = source.strip("/").split("/")
    if len(parts) < 2 or source.startswith((".", "/", "~")):
        raise ModelLoadError(f"{source}: no such local file, and not a hub reference 'owner/repo[/path]'")
    from huggingface_hub import hf_hub_download

    repo_id = "/".join(parts[:2])
    candidates = ["/".join(parts[2:])] if len(parts) > 2 else list(default_names)
    errors = []
    for filename in candidates:
        try:
            return Path(_with_deadline(f"{repo_id}/{filename}", hf_hub_download, repo_id=repo_id,
                                       filename=filename))
        except ModelLoadError:
            raise
        except Exception as err:  # network, missing file, gated repo: report them all below
            errors.append(f"{filename}: {type(err).__name__}: {err}")
    raise ModelLoadError(f"could not fetch from hub repo {repo_id!r}: " + "; ".join(errors))


def resolve_dir(source: str, allow_patterns: list[str] | None = None) -> Path:
    """Return a local directory for a local path or a hub repo id (downloaded with ``snapshot_download``)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{source}: expected a directory, found a file")
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelLoadError(f"{source}: no such local directory, and not a hub repo id 'owner/name'")
    from huggingface_hub import snapshot_download

    try:
        return Path(_with_deadline(source, snapshot_download, repo_id=source, allow_patterns=allow_patterns))
    except ModelLoadError:
        raise
    except Exception as err:
        raise ModelLoadError(f"could not fetch hub repo {source!r}: {type(err).__name__}: {err}") from None


def check_tokenizer(tokenizer: object, vocab_size: int, what: str, source: str) -> None:
    """Reject a tokenizer whose vocabulary does not fit the model (e.g. a stand-in made from missing files)."""
    size = len(tokenizer)  # type: ignore[arg-type]
    if size > vocab_size or size < 0.9 * vocab_size:
        raise ModelLoadError(
            f"{what} tokenizer at {source!r} has {size} tokens but the model expects {vocab_size}: "
            "tokenizer files missing or from another model"
        )


def load_transformers_strict(cls: type, source: str, what: str, **kwargs: object) -> object:
    """``cls.from_pretrained(source)`` that fails, naming the keys, if any weight is missing or unexpected."""
    try:
        model, info = cls.from_pretrained(source, output_loading_info=True, **kwargs)
    except Exception as err:
        raise ModelLoadError(f"cannot load the {what} from {source!r}: {err}") from None
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(info.get("unexpected_keys", []))
    mismatched = sorted(str(m) for m in info.get("mismatched_keys", []))
    if missing or unexpected or mismatched:
        raise ModelLoadError(
            f"{what} at {source!r} does not match {cls.__name__}: missing keys {missing}; "
            f"unexpected keys {unexpected}; shape mismatches {mismatched}"
        )
    return model
