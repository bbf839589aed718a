"""The vocabulary layer: canonical categories and synonyms (:mod:`.categories`), prompt phrases and the EBP
prompts (:mod:`.phrases`), dataset label schemes and palettes (:mod:`.labels`). Data readers, training and
inference all import it; it imports none of them.
"""

from . import categories, labels, phrases

__all__ = ["categories", "labels", "phrases"]
