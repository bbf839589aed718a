"""One reader per dataset format; :data:`FORMATS` maps each format name to its reader class."""

from __future__ import annotations

from ...vocab.labels import ATR_LABELS, CCP_LABELS, CIHP_LABELS, LIP_LABELS, PASCAL_PERSON_PART_LABELS, voc_colormap
from ..base import ParsingDataset
from .atr import ATRDataset
from .ccp import CCPDataset, read_ccp_labels
from .cihp import CIHPDataset
from .coco import PERSON_KEYS, COCODataset, decode_segmentation
from .lip import LIPDataset
from .nopeople import NoPersonDataset
from .pascal import PascalPersonPartDataset

FORMATS: dict[str, type[ParsingDataset]] = {
    "ccp": CCPDataset,
    "lip": LIPDataset,
    "cihp": CIHPDataset,
    "pascal-person-part": PascalPersonPartDataset,
    "atr": ATRDataset,
    "coco": COCODataset,
    "no-person": NoPersonDataset,
}
"""Format name (the FORMAT of a ``FORMAT:PATH`` spec) -> reader class."""

__all__ = [
    "ATR_LABELS",
    "CCP_LABELS",
    "CIHP_LABELS",
    "FORMATS",
    "LIP_LABELS",
    "PASCAL_PERSON_PART_LABELS",
    "PERSON_KEYS",
    "ATRDataset",
    "CCPDataset",
    "CIHPDataset",
    "COCODataset",
    "LIPDataset",
    "NoPersonDataset",
    "PascalPersonPartDataset",
    "decode_segmentation",
    "read_ccp_labels",
    "voc_colormap",
]
