"""Convert a BodyPix MobileNetV1 ONNX file to the ``.safetensors`` the ``bodypix`` backbone loads.

Usage::

    python scripts/convert_bodypix.py ../shared/weights/bodypix/MobileNetV1-x050-stride16.onnx --out W.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, convert, print a summary; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", type=Path, help="BodyPix MobileNetV1 .onnx file (stride 16 or 8)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output .safetensors (default: <onnx stem>.safetensors in the current directory)")
    args = parser.parse_args(argv)

    from spectrum_parsing.backbones.bodypix_weights import convert_bodypix
    from spectrum_parsing.hub import ModelLoadError

    out = args.out if args.out is not None else Path(args.onnx.stem + ".safetensors")
    try:
        summary = convert_bodypix(args.onnx, out)
    except ModelLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {summary['out']}: {summary['tensors']} tensors, {summary['parameters']:,} parameters, "
          f"output stride {summary['output_stride']}, licence {summary['metadata']['license']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
