"""The CPU kernels behind this round's exact speed-ups, each against the plain form it replaced, in one run:

* ``exp`` of the pose-model ports (``persons.tfgraph``) on a map like MoveNet's 512-px keypoint weights (most
  results under float32's smallest normal), plain vs flushed under e^-80;
* the deformable attention's softmax over 12-wide rows (``decoder.layers.softmax_last``) vs ``torch.softmax``;
* its weighted sum over sampling points: einsum vs multiply-and-sum, and queries-major vs points-major samples;
* ReLU6 on a fresh large map: a new tensor vs in place.

Medians of ``--repeats`` calls, ``--threads`` threads; each pair's outputs are checked equal (within 1e-6).

    python benchmarks/bench_kernels.py --repeats 20
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.nn import functional as F

from common import median_time, record
from spectrum_parsing.decoder.layers import softmax_last
from spectrum_parsing.persons.tfgraph import _OPS


def pairs() -> dict[str, tuple]:
    """name -> (plain, replacement), each a zero-argument callable returning a tensor."""
    torch.manual_seed(0)
    distances = -torch.rand(96, 128, 6, 17) * 5000  # negative squared distances: e^x mostly below 1e-38
    logits = torch.randn(5, 2100, 8, 12) * 3
    sampled, weights = torch.randn(40, 16, 2100, 4), torch.randn(40, 1, 2100, 4)
    # the same samples as grid_sample writes them when the grid lists points before queries
    sampled_t, weights_t = sampled.transpose(2, 3).contiguous(), weights.transpose(2, 3).contiguous()
    feature = torch.randn(5, 96, 160, 160).contiguous(memory_format=torch.channels_last)
    return {
        "exp, MoveNet 512-px keypoint weights (96x128x6x17)": (lambda: distances.exp(),
                                                              lambda: _OPS["Exp"]([distances], {})),
        "softmax over 12-wide rows (5x2100x8x12)": (lambda: logits.softmax(-1), lambda: softmax_last(logits)),
        "weighted sum over 4 points (40x16x2100x4)": (
            lambda: torch.einsum("bcqp,bxqp->bcq", sampled, weights), lambda: (sampled * weights).sum(-1)),
        "weighted sum over 4 points, sampled points-major (40x16x4x2100, as the decoder now samples)": (
            lambda: (sampled * weights).sum(-1), lambda: (sampled_t * weights_t).sum(2)),
        "ReLU6 of a fresh 5x96x160x160 map": (lambda: F.relu6(feature * 1.0),
                                             lambda: F.relu6(feature * 1.0, inplace=True)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, str] = {}
    for name, (plain, replacement) in pairs().items():
        diff = float((plain() - replacement()).abs().max())
        if diff > 1e-6:
            print(f"{name}: outputs differ by {diff:.2e}", file=sys.stderr)
            return 1
        before, _ = median_time(plain, args.repeats)
        after, _ = median_time(replacement, args.repeats)
        results[name] = f"{1000 * before:.2f} ms -> {1000 * after:.2f} ms ({before / after:.1f}x)"
        print(f"{name}: {results[name]}", flush=True)
    command = f"python benchmarks/bench_kernels.py --repeats {args.repeats}"
    record("CPU kernels of the exact speed-ups: plain vs replacement", command,
           {"repeats": args.repeats, "threads": args.threads}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
