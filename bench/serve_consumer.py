"""Consumer side of bench/serve.bench.ts: batches per second a Python trainer gets (1) through `octomix serve`
(numpy views of the shared ring, each field copied out once, as a trainer's host-to-device staging would) and
(2) from a reference loader in plain numpy over the same shards (np.memmap of .bin/.idx, shuffled documents
concatenated into seqLength + 1 windows, the same fields built with numpy), in the same run.

usage: python3 serve_consumer.py CONFIG.json  -> prints one JSON line of results
"""
import json
import os
import sys
import time

import numpy as np

config = json.load(open(sys.argv[1]))
sys.path.insert(0, config["pythonDir"])
from octomix_client import OctomixClient  # noqa: E402

seq_length = config["seqLength"]
micro = config["microBatchSize"]
count = config["batches"]
results = {}


COMMON = ("input_ids", "labels", "position_ids", "loss_mask", "source_ids")


def consume(fields):
    # what a trainer does with a batch before the GPU copy: one contiguous host copy of each field (the fields
    # both loaders make)
    return sum(int(np.array(fields[name]).view(np.uint8)[:1].sum()) for name in COMMON)


with OctomixClient(recipe=config["recipe"], branch=config.get("branch"), micro_batch_size=micro, prefetch=8,
                   cache_dir=config["cacheDir"], command=config["command"]) as client:
    iterator = iter(client)
    for _ in range(20):  # warm-up
        batch = next(iterator)
        batch.release()
    start = time.perf_counter()
    for _ in range(count):
        batch = next(iterator)
        consume(batch._fields)
        batch.release()
    seconds = time.perf_counter() - start
results["serve"] = {"batchesPerSecond": count / seconds, "tokensPerSecond": count * micro * seq_length / seconds}


def read_index(prefix):
    with open(prefix + ".idx", "rb") as handle:
        header = handle.read(34)
    dtype_code = header[17]
    sequences = int.from_bytes(header[18:26], "little")
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}[dtype_code]
    lengths = np.memmap(prefix + ".idx", dtype=np.int32, mode="r", offset=34, shape=(sequences,))
    pointers = np.memmap(prefix + ".idx", dtype=np.int64, mode="r", offset=34 + 4 * sequences, shape=(sequences,))
    tokens = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    return lengths, pointers // np.dtype(dtype).itemsize, tokens


class ReferenceLoader:
    def __init__(self, prefixes, shares, seed=1):
        rng = np.random.default_rng(seed)
        self.sources = [read_index(prefix) for prefix in prefixes]
        self.orders = [rng.permutation(len(lengths)) for lengths, _, _ in self.sources]
        self.position = [0] * len(prefixes)
        self.offset = [0] * len(prefixes)
        self.shares = shares
        self.taken = [0] * len(prefixes)

    def window(self, source):
        lengths, starts, tokens = self.sources[source]
        order = self.orders[source]
        pieces, filled = [], 0
        while filled < seq_length + 1:
            document = order[self.position[source] % len(order)]
            begin = starts[document] + self.offset[source]
            take = min(int(lengths[document]) - self.offset[source], seq_length + 1 - filled)
            pieces.append(tokens[begin:begin + take])
            filled += take
            if self.offset[source] + take == lengths[document]:
                self.position[source] += 1
                self.offset[source] = 0
            else:
                self.offset[source] += take - 1
        return np.concatenate(pieces).astype(np.int32)

    def next(self):
        total = sum(self.taken)
        windows, sources = [], []
        for _ in range(micro):
            deficits = [share * max(total, 1) - taken for share, taken in zip(self.shares, self.taken)]
            source = int(np.argmax(deficits))
            windows.append(self.window(source))
            sources.append(source)
            self.taken[source] += seq_length
            total += seq_length
        stacked = np.stack(windows)
        return {
            "input_ids": stacked[:, :-1].copy(), "labels": stacked[:, 1:].copy(),
            "position_ids": np.tile(np.arange(seq_length, dtype=np.int32), (micro, 1)),
            "loss_mask": np.ones((micro, seq_length), dtype=np.uint8),
            "source_ids": np.array(sources, dtype=np.uint16),
        }


reference = ReferenceLoader(config["prefixes"], config["shares"])
for _ in range(20):
    reference.next()
start = time.perf_counter()
for _ in range(count):
    consume(reference.next())
seconds = time.perf_counter() - start
results["reference"] = {"batchesPerSecond": count / seconds, "tokensPerSecond": count * micro * seq_length / seconds}
print(json.dumps(results))
