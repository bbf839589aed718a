"""The backbone registry (in the manner of timm's ``register_model``): each backbone type registers itself where
it is defined, with one decorator on its loader naming its config class and small example configs that load
offline. Parsing a config, loading a backbone and the contract test (``tests/test_backbone_contract.py``) all
read the registry, so a new backbone is one module (config + loader + ``@register_backbone``) plus its test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..configs import ConfigBase, ConfigError

if TYPE_CHECKING:
    from .base import FeatureBackbone

__all__ = ["BackboneSpec", "backbone_config_from_dict", "load_backbone", "register_backbone", "registered_backbones"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone type: its config class, its loader (config -> backbone, does the I/O) and
    ``examples(workdir)``: small configs of this type that load offline (files they need go in ``workdir``)."""

    name: str
    config_class: type[ConfigBase]
    loader: Callable[[Any], FeatureBackbone]
    examples: Callable[[Path], Sequence[ConfigBase]]


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(name: str, config_class: type[ConfigBase],
                      examples: Callable[[Path], Sequence[ConfigBase]]) -> Callable[[F], F]:
    """Decorator for a backbone type's loader: registers ``name`` (the config's ``type``) once."""
    def decorator(loader: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"backbone type {name!r} is registered twice")
        _REGISTRY[name] = BackboneSpec(name, config_class, loader, examples)
        return loader
    return decorator


def registered_backbones() -> dict[str, BackboneSpec]:
    """Every registered backbone type, by name (the backbones package registers all of its own on import)."""
    return dict(_REGISTRY)


def backbone_config_from_dict(data: dict[str, Any]) -> ConfigBase:
    """Build the config class of the backbone type named by ``data["type"]``."""
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in _REGISTRY:
        raise ConfigError(f"backbone config needs 'type' in {sorted(_REGISTRY)}, got {kind!r}")
    return _REGISTRY[kind].config_class.from_dict(data)


def load_backbone(config: ConfigBase) -> FeatureBackbone:
    """Load the backbone a config describes (this does the I/O; constructors never do)."""
    spec = _REGISTRY.get(getattr(config, "type", None))  # type: ignore[arg-type]
    if spec is None or not isinstance(config, spec.config_class):
        raise TypeError(f"no backbone loader for {type(config).__name__}")
    return spec.loader(config)
