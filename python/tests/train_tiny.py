"""A tiny causal transformer trained on OctomixIterable batches, for the resume test: prints the loss of each step
(as float hex, so runs compare bitwise), optionally saves model, optimizer and data state at a step, or starts from
such a checkpoint in a new process."""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from octomix.torch import OctomixIterable  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--recipe", required=True)
parser.add_argument("--save-at", type=int, default=-1)
parser.add_argument("--checkpoint", default=None)
parser.add_argument("--resume", action="store_true")
options = parser.parse_args()

torch.manual_seed(0)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(512, 32)
        self.position = torch.nn.Embedding(64, 32)
        self.block = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(32, 512)

    def forward(self, ids, positions):
        n = ids.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        return self.head(self.block(self.embed(ids) + self.position(positions.clamp(max=63)), src_mask=mask))


model = Tiny()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
batches = OctomixIterable(options.recipe, micro_batch_size=4)
step = 0
if options.resume:
    checkpoint = torch.load(options.checkpoint)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    batches.load_state_dict(checkpoint["data"])
    step = checkpoint["step"]
losses = []
for batch in batches:
    logits = model(batch["input_ids"].long(), batch["position_ids"].long())
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 512), batch["labels"].long().reshape(-1), ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append({"step": batch["step"], "stage": batch["stage"], "loss": loss.item().hex()})
    step += 1
    if step == options.save_at:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "data": batches.state_dict(), "step": step}, options.checkpoint)
print(json.dumps(losses))
