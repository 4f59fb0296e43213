"""One rank of a multi-rank run: `torchrun --nproc_per_node 8 examples/torchrun_train.py RECIPE BRANCH`.

Each rank starts its own `octomix serve` and reads its slice of every global batch (rank and world size come from
torch.distributed). The union of the ranks' micro-batches of a step is the step's global batch, and a state saved
at a step boundary resumes under another world size.
"""
import sys

import torch
import torch.distributed

from octomix.torch import OctomixIterable

torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
rank = torch.distributed.get_rank()
if torch.cuda.is_available():
    torch.cuda.set_device(rank % torch.cuda.device_count())
device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
batches = OctomixIterable(sys.argv[1], branch=sys.argv[2] if len(sys.argv) > 2 else None, micro_batch_size=2,
                          device=str(device), pin_memory=device.type == "cuda")
for batch in batches:
    ids = batch["input_ids"]  # this rank's rows of the step
    # forward/backward of your model, then optimizer.step() after the step's last micro-batch
    if rank == 0 and batch["step"] % 100 == 0 and batch["micro_batch"] == 0:
        torch.save({"data": batches.state_dict()}, "data-state.pt")  # restore with batches.load_state_dict(...)
torch.distributed.destroy_process_group()
