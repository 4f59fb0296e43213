"""octomix for Python trainers: batches from an octomix DataLoader (`octomix serve`, run from the npm package) as
numpy views of a shared-memory ring (`OctomixClient`), or as torch tensors with the PyTorch conventions
(`octomix.torch.OctomixIterable`: Stateful `state_dict()`/`load_state_dict()`, rank and world size from
torch.distributed). Needs numpy and msgpack; torch only for `octomix.torch`."""
from octomix.client import Batch, OctomixClient, OctomixServerError, find_cli, snake_case

__all__ = ["Batch", "OctomixClient", "OctomixServerError", "find_cli", "snake_case"]
__version__ = "0.1.0"
