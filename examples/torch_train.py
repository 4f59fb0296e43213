"""A plain PyTorch loop over an octomix recipe, with checkpoints that resume exactly.

    pip install ./node_modules/octomix/python
    python examples/torch_train.py examples/stable-then-decay.yaml long
"""
import sys

import torch

from octomix.torch import OctomixIterable

recipe, branch = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
device = "cuda" if torch.cuda.is_available() else "cpu"
batches = OctomixIterable(recipe, branch=branch, micro_batch_size=2, device=device, pin_memory=device == "cuda")
checkpoint = {}
for batch in batches:
    # model(...) and optimizer.step() go here; see docs/python.md for where each field goes
    if batch["micro_batch"] == 0 and batch["step"] % 100 == 0:
        checkpoint = {"data": batches.state_dict()}  # with your model's and optimizer's state_dict()
        print(f"step {batch['step']} ({batch['stage']}): {batch['loss_tokens']} loss tokens")
