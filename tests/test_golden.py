"""Golden outputs of the embedded models (recorded by scripts/record_golden.py): the shipped weights, the
backbone ports and the preprocessing still give the same logits on a bundled photo."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spectrum_parsing.embedded import EMBEDDED_MODELS, WEIGHTS_DIR
from spectrum_parsing.modeling import SpectrumModel

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "golden"


def _recorder():
    spec = importlib.util.spec_from_file_location("record_golden", ROOT / "scripts" / "record_golden.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["record_golden"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", EMBEDDED_MODELS)
def test_embedded_model_matches_its_golden_outputs(name):
    if not (FIXTURES / f"{name}.safetensors").is_file():
        pytest.fail(f"no golden outputs for the embedded model {name}: run scripts/record_golden.py")
    want = load_file(str(FIXTURES / f"{name}.safetensors"))
    got = _recorder().golden(SpectrumModel.from_pretrained(WEIGHTS_DIR / name).eval())
    for key in want:
        assert torch.allclose(got[key], want[key], atol=1e-3, rtol=1e-4), (key, (got[key] - want[key]).abs().max())
