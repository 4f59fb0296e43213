"""PyTorch integration: `OctomixIterable`, an iterable of batches as torch tensors from `octomix serve`.

    from octomix.torch import OctomixIterable

    batches = OctomixIterable("recipe.yaml", branch="long", micro_batch_size=2)   # rank/world from torch.distributed
    batches.load_state_dict(checkpoint["data"])                                 # optional: resume exactly
    for batch in batches:
        loss = model(batch["input_ids"], labels=batch["labels"], position_ids=batch["position_ids"])
        ...
        checkpoint["data"] = batches.state_dict()                               # a few numbers

- Tensors are zero-copy, read-only views of the server's shared-memory ring (CPU; source_ids, uint16 in the ring,
  comes as an int32 copy) and stay valid until the next batch is taken:
  the iterable then hands the slot back, so a plain loop never runs the ring dry. Pass `copy=True` for tensors that
  own their memory, or `device="cuda:0"` (with `pin_memory=True` for an async copy from pinned memory).
- `state_dict()` / `load_state_dict()` follow torchdata's Stateful protocol: the state is the position after the
  batches this iterable has yielded, so it checkpoints with torch.distributed.checkpoint or a trainer's own dict.
  Resuming at a step boundary may change the world size or micro-batch size (the same global stream continues).
- Rank and world size: explicit arguments, else torch.distributed when initialised, else $RANK / $WORLD_SIZE, else a
  single process. One server per rank is started with the iteration and stopped when it ends or `close()` is
  called.
- With torch.utils.data.DataLoader(batches, batch_size=None), keep num_workers=0: the server already builds batches
  ahead on native threads, and a worker process could not report state_dict() to the trainer; worker processes are
  refused with an error saying so.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.utils.data

from octomix.client import OctomixClient

__all__ = ["OctomixIterable"]


def _distributed() -> Optional[tuple]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None


class OctomixIterable(torch.utils.data.IterableDataset):
    """Batches of an octomix recipe as dicts of torch tensors (see the module's documentation).

    Each batch dict holds every field the server serves (input_ids, labels, position_ids, loss_mask, cu_seqlens,
    document_ids, source_ids, samples) and `step`, `micro_batch`, `stage`, `max_seqlen`, `loss_tokens`, `sources`.
    Other arguments are OctomixClient's (prefetch, threads, cache_dir, command, env, receive_timeout).
    """

    def __init__(self, recipe: str, branch: Optional[str] = None, micro_batch_size: Optional[int] = None,
                 rank: Optional[int] = None, world_size: Optional[int] = None, device: Optional[str] = None,
                 pin_memory: bool = False, copy: bool = False, prefetch: Optional[int] = None,
                 threads: Optional[int] = None, cache_dir: Optional[str] = None, command: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None, receive_timeout: Optional[float] = 300.0):
        super().__init__()
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        self.recipe = recipe
        self.branch = branch
        self.micro_batch_size = micro_batch_size
        self._rank = rank
        self._world_size = world_size
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = pin_memory
        self.copy = copy
        self._options = dict(prefetch=prefetch, threads=threads, cache_dir=cache_dir, command=command, env=env,
                             receive_timeout=receive_timeout)
        self._resume: Optional[Dict[str, Any]] = None
        self._client: Optional[OctomixClient] = None

    @property
    def rank(self) -> int:
        return self._topology()[0]

    @property
    def world_size(self) -> int:
        return self._topology()[1]

    def _topology(self) -> tuple:
        if self._rank is not None:
            return self._rank, self._world_size
        found = _distributed()
        if found is not None:
            return found
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if torch.utils.data.get_worker_info() is not None:
            raise RuntimeError("octomix.torch.OctomixIterable: use DataLoader(..., num_workers=0): the octomix server already "
                               "prefetches on native threads, and a worker process cannot report state_dict() to the trainer")
        self.close()
        rank, world_size = self._topology()
        client = OctomixClient(recipe=self.recipe, branch=self.branch, rank=rank, world_size=world_size,
                               micro_batch_size=self.micro_batch_size, resume=self._resume, **self._options)
        self._client = client
        try:
            for batch in client:
                try:
                    yield self._tensors(batch)
                finally:
                    batch.release()  # the next batch is being taken (or the loop ended): the slot goes back
        finally:
            if self._client is client:
                try:
                    self._resume = client.state()  # where a later iteration (or state_dict()) continues
                except Exception:
                    pass  # the server is gone: keep the last known position
                self.close()

    def _tensors(self, batch) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for name in batch.keys():
            view = batch[name]
            if view.dtype == np.uint16:
                view = view.astype(np.int32)  # torch has no uint16 tensors before 2.3: source_ids as int32 (a copy)
            elif self.copy:
                view = np.array(view)
            with warnings.catch_warnings():
                # The ring is mapped read-only: views are documented as read-only, so torch's warning about
                # non-writable arrays says nothing new.
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.from_numpy(view)
            if self.device is not None:
                if self.pin_memory:
                    tensor = tensor.pin_memory()
                tensor = tensor.to(self.device, non_blocking=self.pin_memory)
            out[name] = tensor
        out.update(step=batch.step, micro_batch=batch.micro_batch, stage=batch.stage, max_seqlen=batch.max_seqlen,
                   loss_tokens=batch.loss_tokens, sources=batch.sources, index=batch.index)
        return out

    def state_dict(self) -> Dict[str, Any]:
        """The position after the batches yielded so far (torchdata's Stateful protocol)."""
        if self._client is not None and not self._client._closed:
            return {"octomix": self._client.state()}
        return {"octomix": self._resume}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume from a state_dict() on the next iteration."""
        if not isinstance(state, dict) or "octomix" not in state:
            raise ValueError(f"load_state_dict: expected a dict from state_dict() with key 'octomix', received {state!r}")
        if self._client is not None:
            raise RuntimeError("load_state_dict: call it before iterating (or after close())")
        self._resume = state["octomix"]

    def close(self) -> None:
        """Stops this rank's server (it also stops when iteration ends)."""
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
