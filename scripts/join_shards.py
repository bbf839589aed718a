"""Join the safetensors shards exported by ``scripts/train_gpu.py --export DIR`` into a loadable model folder.

    python scripts/join_shards.py DIR OUT_DIR [--prompt-table src/spectrum_parsing/weights/spectrum-lite2]

Writes ``OUT_DIR/config.json`` and ``OUT_DIR/model.safetensors`` (every tensor of every shard, bit for bit; a key
in two shards is an error), and copies a prompt table from ``--prompt-table`` when given.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards")
    parser.add_argument("out")
    parser.add_argument("--prompt-table", default=None, help="a model folder whose prompt table to copy")
    args = parser.parse_args()
    src, out = Path(args.shards), Path(args.out)
    files = sorted(src.glob("model-*.safetensors"))
    if not files:
        raise SystemExit(f"{src}: no model-*.safetensors shards")
    state, metadata = {}, None
    for path in files:
        with safe_open(str(path), "pt") as f:
            metadata = metadata or f.metadata()
            for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                if key in state:
                    raise SystemExit(f"{path}: {key} is in two shards")
                state[key] = f.get_tensor(key)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", out / "config.json")
    save_file(state, str(out / "model.safetensors"), metadata=metadata)
    if args.prompt_table:
        shutil.copy(Path(args.prompt_table) / "prompt_embeddings.safetensors", out / "prompt_embeddings.safetensors")
    print(f"{out}: {len(state)} tensors from {len(files)} shards")


if __name__ == "__main__":
    main()
