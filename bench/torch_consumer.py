"""Tokens/s delivered into torch tensors (steady state, after the first batch): octomix.torch.OctomixIterable (batches built by `octomix serve`) against a
torch.utils.data.DataLoader with pin_memory=True and 2 workers over a numpy memmap of the same shards, producing
the same fields (input_ids, labels, position_ids restarting per document, loss_mask, cu_seqlens), concat windows at
shuffled positions. Same shards, same run. `python3 bench/torch_consumer.py [TOKENS_MILLIONS]`; prints markdown."""
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
import torch.utils.data

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))
from helpers import environment, write_shard  # noqa: E402
from octomix.torch import OctomixIterable  # noqa: E402

SEQ, GLOBAL, MICRO = 8192, 16, 4  # the recipe's 8k context
millions = float(sys.argv[1]) if len(sys.argv) > 1 else 60
folder = tempfile.mkdtemp(prefix="octomix-torch-bench-")
for name in ("shm", "cache"):
    os.makedirs(os.path.join(folder, name))
os.environ.update(environment(folder))
rng = np.random.RandomState(1)
lengths = np.maximum(1, rng.exponential(1500, size=int(millions * 1e6 / 1500))).astype(np.int64)
tokens = rng.randint(1, 50000, size=int(lengths.sum())).astype(np.uint16)
starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
write_shard(os.path.join(folder, "web"), [tokens[s:s + n] for s, n in zip(starts, lengths)])
steps = int(tokens.size * 0.9 // (SEQ * GLOBAL))
recipe = os.path.join(folder, "recipe.json")
with open(recipe, "w") as handle:
    handle.write(f'{{"seed": 1, "seqLength": {SEQ}, "globalBatchSize": {GLOBAL}, "packing": "concat", '
                 f'"sources": {{"web": {{"path": "{os.path.join(folder, "web")}"}}}}, "stages": [{{"tokens": {steps * SEQ * GLOBAL}, "mix": {{"web": 1}}}}]}}')


class Memmap(torch.utils.data.Dataset):
    """One micro-batch per item: MICRO concat windows of SEQ + 1 tokens at shuffled offsets of the token memmap."""

    def __init__(self):
        self.count = steps * GLOBAL // MICRO
        self.offsets = np.random.RandomState(2).randint(0, tokens.size - SEQ - 1, size=(self.count, MICRO))

    def __len__(self):
        return self.count

    def __getitem__(self, item):
        mm = np.memmap(os.path.join(folder, "web.bin"), dtype=np.uint16, mode="r")
        ids = np.empty((MICRO, SEQ), np.int32)
        labels = np.empty((MICRO, SEQ), np.int32)
        positions = np.empty((MICRO, SEQ), np.int32)
        bounds = [0]
        for row, offset in enumerate(self.offsets[item]):
            window = mm[offset:offset + SEQ + 1].astype(np.int32)
            ids[row], labels[row] = window[:-1], window[1:]
            at = np.arange(offset, offset + SEQ)
            positions[row] = at - starts[np.searchsorted(starts, at, side="right") - 1]
            bounds.extend((row * SEQ + np.flatnonzero(positions[row] == 0)[1:]).tolist() + [(row + 1) * SEQ])
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels), "position_ids": torch.from_numpy(positions),
                "loss_mask": torch.ones((MICRO, SEQ), dtype=torch.uint8), "cu_seqlens": torch.tensor(bounds, dtype=torch.int32)}


def run(iterable, label):
    """Steady state: timed from the first batch (server start-up and plan, or worker start, excluded)."""
    delivered = 0
    checksum = 0
    begun = None
    for batch in iterable:
        checksum += int(batch["input_ids"][0, 0])  # touch the tensors the trainer gets
        if begun is None:
            begun = time.perf_counter()
            continue
        delivered += batch["input_ids"].numel()
    seconds = time.perf_counter() - begun
    return label, delivered, seconds


results = [
    run(OctomixIterable(recipe, micro_batch_size=MICRO, rank=0, world_size=1, threads=2), "octomix.torch.OctomixIterable (views, 2 native threads)"),
    run(torch.utils.data.DataLoader(Memmap(), batch_size=None, num_workers=2, pin_memory=True, shuffle=False), "torch DataLoader, 2 workers, pin_memory=True, numpy memmap"),
]
print(f"- machine: {platform.processor() or platform.machine()} x {os.cpu_count()}, Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}")
print(f"- shards: {tokens.size / 1e6:.1f}M uint16 tokens, {lengths.size:,} documents; seqLength {SEQ}, micro-batches of {MICRO}, concat packing\n")
print("| consumer | tokens | seconds | tokens/s |")
print("| --- | --- | --- | --- |")
for label, delivered, seconds in results:
    print(f"| {label} | {delivered / 1e6:.1f}M | {seconds:.2f} | {delivered / seconds / 1e6:.1f}M |")
print(f"\nratio: {results[0][1] / results[0][2] / (results[1][1] / results[1][2]):.2f}x")
