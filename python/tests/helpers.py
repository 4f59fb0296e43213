"""Shared by the Python tests: Megatron shards written with numpy (the layout in docs/formats.md), recipes, and the
octomix CLI of this checkout."""
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the octomix package of this checkout

from octomix import find_cli  # noqa: E402


def write_shard(prefix: str, documents) -> None:
    lengths = np.array([len(d) for d in documents if len(d) > 0], dtype=np.int32)
    with open(prefix + ".bin", "wb") as handle:
        for document in documents:
            handle.write(np.asarray(document, dtype=np.uint16).tobytes())
    pointers = np.concatenate(([0], np.cumsum(lengths.astype(np.int64) * 2)[:-1])).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)
    index = [0]
    for document in documents:
        index.append(index[-1] + (1 if len(document) > 0 else 0))
    with open(prefix + ".idx", "wb") as handle:
        handle.write(b"MMIDIDX\x00\x00" + np.uint64(1).tobytes() + bytes([8]) + np.uint64(len(lengths)).tobytes() + np.uint64(len(index)).tobytes())
        handle.write(lengths.tobytes() + pointers.tobytes() + np.asarray(index, dtype=np.int64).tobytes())


def make_recipe(folder: str, stable_steps: int = 20, decay_steps: int = 10, seq: int = 32, batch: int = 4) -> str:
    """Two sources of token ids < 512 and a Stable-then-Decay recipe of whole steps; returns the recipe's path."""
    rng = np.random.RandomState(7)
    for name, count, longest in (("web", 300, 90), ("qa", 200, 30)):
        documents = [rng.randint(1, 512, size=rng.randint(1, longest)).tolist() for _ in range(count)]
        write_shard(os.path.join(folder, name), documents)
    recipe = {
        "seed": 3, "seqLength": seq, "globalBatchSize": batch, "packing": "bestfit",
        "sources": {"web": {"path": os.path.join(folder, "web")}, "qa": {"path": os.path.join(folder, "qa")}},
        "stages": [{"name": "stable", "tokens": stable_steps * seq * batch, "mix": {"web": 0.7, "qa": 0.3}},
                   {"name": "decay", "tokens": decay_steps * seq * batch, "mix": {"web": 0.5, "qa": 0.5}}],
    }
    path = os.path.join(folder, "recipe.json")
    with open(path, "w") as handle:
        json.dump(recipe, handle)
    return path


def scratch() -> str:
    folder = tempfile.mkdtemp(prefix="octomix-py-")
    os.makedirs(os.path.join(folder, "shm"))
    os.makedirs(os.path.join(folder, "cache"))
    return folder


def environment(folder: str) -> dict:
    return dict(os.environ, OCTOMIX_SHM_DIR=os.path.join(folder, "shm"), OCTOMIX_CACHE_DIR=os.path.join(folder, "cache"),
                PYTHONPATH=os.path.dirname(HERE))


CLI = find_cli()
