"""GPU side of bench/gpu.bench.ts (the GPU machine: torch with CUDA). Prints one JSON line:
  - pinnedCopyGBps: torch's host-to-device bandwidth from pinned memory (the bus ceiling the loader is held to),
  - serve: batches/s a trainer loop gets through `octomix serve --device cuda:0` (batch.cuda(): tensors over the
    server's device ring, mapped once by CUDA IPC), each batch touched by a small kernel,
  - torchLoader: the same loop over a torch DataLoader (pin_memory=True, num_workers=W) reading the same shards
    through numpy memmap (windows of seqLength + 1 tokens of shuffled documents), batches moved with
    .to('cuda', non_blocking=True).
usage: python3 gpu_consumer.py CONFIG.json
"""
import json
import sys
import time

import numpy as np
import torch

config = json.load(open(sys.argv[1]))
sys.path.insert(0, config["pythonDir"])
from octomix_client import OctomixClient  # noqa: E402

seq_length, micro, count = config["seqLength"], config["microBatchSize"], config["batches"]
device = torch.device("cuda:0")
results = {}

# 1. pinned host-to-device bandwidth, 256 MiB copies
size = 256 << 20
host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
target = torch.empty(size, dtype=torch.uint8, device=device)
for _ in range(3):
    target.copy_(host, non_blocking=True)
torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(20):
    target.copy_(host, non_blocking=True)
torch.cuda.synchronize()
results["pinnedCopyGBps"] = 20 * size / (time.perf_counter() - start) / 1e9


def step(input_ids, labels):
    # stands for the trainer's forward: a kernel that reads the batch
    return (input_ids.long() * 3 + labels.long()).sum()


# 2. through octomix serve on cuda:0
with OctomixClient(recipe=config["recipe"], micro_batch_size=micro, prefetch=8, device="cuda:0", cache_dir=config["cacheDir"],
                   command=config["command"]) as client:
    iterator = iter(client)
    for _ in range(20):
        next(iterator).release()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        batch = next(iterator)
        tensors = batch.cuda()
        step(tensors["input_ids"], tensors["labels"])
        batch.release()
    torch.cuda.synchronize()
    results["serve"] = count / (time.perf_counter() - start)


# 3. torch DataLoader, pin_memory=True, numpy memmap windows
class MemmapWindows(torch.utils.data.IterableDataset):
    def __init__(self, prefixes, shares):
        self.prefixes, self.shares = prefixes, shares

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(info.id if info else 0)
        sources = []
        for prefix in self.prefixes:
            header = open(prefix + ".idx", "rb").read(34)
            sequences = int.from_bytes(header[18:26], "little")
            lengths = np.memmap(prefix + ".idx", dtype=np.int32, mode="r", offset=34, shape=(sequences,))
            pointers = np.memmap(prefix + ".idx", dtype=np.int64, mode="r", offset=34 + 4 * sequences, shape=(sequences,)) // 2
            sources.append((lengths, pointers, np.memmap(prefix + ".bin", dtype=np.uint16, mode="r"), rng.permutation(sequences)))
        positions = [0] * len(sources)
        while True:
            source = int(rng.choice(len(sources), p=self.shares))
            lengths, pointers, tokens, order = sources[source]
            pieces, filled = [], 0
            while filled < seq_length + 1:
                document = order[positions[source] % len(order)]
                positions[source] += 1
                take = min(int(lengths[document]), seq_length + 1 - filled)
                pieces.append(tokens[pointers[document]:pointers[document] + take])
                filled += take
            window = torch.from_numpy(np.concatenate(pieces).astype(np.int64))
            yield window[:-1], window[1:]


loader = torch.utils.data.DataLoader(MemmapWindows(config["prefixes"], config["shares"]), batch_size=micro, num_workers=config["workers"],
                                     pin_memory=True, prefetch_factor=4)
iterator = iter(loader)
for _ in range(20):
    next(iterator)
torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(count):
    input_ids, labels = next(iterator)
    step(input_ids.to(device, non_blocking=True), labels.to(device, non_blocking=True))
torch.cuda.synchronize()
results["torchLoader"] = count / (time.perf_counter() - start)
print(json.dumps(results))
