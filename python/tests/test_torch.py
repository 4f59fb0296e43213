"""octomix.torch with real torch (Debian python3-torch): a tiny causal transformer's loss curve is bitwise the same
when the run is checkpointed with state_dict() (before and after the stage switch) and resumed in a new process; two
ranks under gloo read together exactly the single-rank global batches, and a state saved by two ranks at a step
boundary resumes on one; DataLoader(batch_size=None) works and worker processes are refused; a killed server raises
within seconds and a killed trainer leaves no server and no shared memory behind."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import torch
import torch.distributed
import torch.multiprocessing

from helpers import CLI, environment, make_recipe, scratch  # noqa: E402  (helpers puts the package on sys.path)
from octomix import OctomixServerError  # noqa: E402
from octomix.torch import OctomixIterable  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def train(folder, recipe, *extra):
    result = subprocess.run([sys.executable, os.path.join(HERE, "train_tiny.py"), "--recipe", recipe, *extra], env=environment(folder),
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)


def rows(batch):
    return [tuple(row) for row in batch["input_ids"].tolist()]


def ranked(rank, world, recipe, folder, steps, queue):
    os.environ.update(environment(folder))
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    batches = OctomixIterable(recipe, micro_batch_size=2)  # rank and world size from torch.distributed
    seen = []
    for batch in batches:
        gathered = [None] * world
        torch.distributed.all_gather_object(gathered, rows(batch))
        seen.append([row for part in gathered for row in part])
        if len(seen) == steps:
            break
    state = batches.state_dict()
    batches.close()
    if rank == 0:
        queue.put({"steps": seen, "state": state, "rank": batches.rank, "world": batches.world_size})
    torch.distributed.destroy_process_group()


class TorchIntegration(unittest.TestCase):
    def test_resumed_runs_give_the_same_loss_curve_bitwise(self):
        folder = scratch()
        recipe = make_recipe(folder)
        full = train(folder, recipe)
        self.assertEqual(len(full), 30)
        self.assertEqual({entry["stage"] for entry in full}, {"stable", "decay"})
        for save_at in (12, 20, 23):  # in the stable stage, at the stage switch, in the decay stage
            checkpoint = os.path.join(folder, f"checkpoint-{save_at}.pt")
            first = train(folder, recipe, "--save-at", str(save_at), "--checkpoint", checkpoint)
            self.assertEqual(first, full)
            resumed = train(folder, recipe, "--resume", "--checkpoint", checkpoint)
            self.assertEqual(resumed, full[save_at:], f"resumed at step {save_at}")

    def test_two_ranks_read_the_single_rank_global_batches_and_resume_on_one(self):
        folder = scratch()
        recipe = make_recipe(folder)
        os.environ.update(environment(folder))
        single = [rows(batch) for batch in OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1)]
        self.assertEqual(len(single), 30)
        context = torch.multiprocessing.get_context("spawn")
        queue = context.Queue()
        processes = [context.Process(target=ranked, args=(rank, 2, recipe, folder, 7, queue)) for rank in range(2)]
        for process in processes:
            process.start()
        result = queue.get(timeout=120)
        for process in processes:
            process.join(60)
            self.assertEqual(process.exitcode, 0)
        self.assertEqual((result["rank"], result["world"]), (0, 2))
        self.assertEqual(result["steps"], single[:7])  # the union of the ranks' rows is each global batch, in order
        self.assertEqual((result["state"]["octomix"]["step"], result["state"]["octomix"]["microBatch"]), (7, 0))
        # The two-rank state at a step boundary continues the same global stream on one rank of 4-row micro-batches.
        resumed = OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1)
        resumed.load_state_dict(result["state"])
        self.assertEqual([rows(batch) for batch in resumed], single[7:])

    def test_dataloader_batch_size_none_works_and_worker_processes_are_refused(self):
        folder = scratch()
        recipe = make_recipe(folder)
        os.environ.update(environment(folder))
        direct = [rows(batch) for batch in OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1)]
        loader = torch.utils.data.DataLoader(OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1), batch_size=None, num_workers=0)
        self.assertEqual([rows(batch) for batch in loader], direct)
        workers = torch.utils.data.DataLoader(OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1), batch_size=None, num_workers=1)
        with self.assertRaisesRegex(RuntimeError, "num_workers=0"):
            next(iter(workers))
        # copy=True tensors outlive the next batch; views are valid until then
        iterable = OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1, copy=True)
        kept = [batch["input_ids"] for batch in iterable]
        self.assertEqual([[tuple(row) for row in tensor.tolist()] for tensor in kept], direct)

    def test_a_killed_server_raises_within_seconds(self):
        folder = scratch()
        recipe = make_recipe(folder)
        os.environ.update(environment(folder))
        iterable = OctomixIterable(recipe, micro_batch_size=4, rank=0, world_size=1)
        iterator = iter(iterable)
        next(iterator)
        os.kill(iterable._client._process.pid, signal.SIGKILL)
        started = time.monotonic()
        with self.assertRaises(OctomixServerError) as raised:
            for _ in iterator:
                pass
        self.assertIn(raised.exception.code, ("SERVER_GONE", "SERVER_TIMEOUT"))
        self.assertLess(time.monotonic() - started, 5)
        iterable.close()

    def test_a_killed_trainer_leaves_no_server_and_no_shared_memory(self):
        folder = scratch()
        recipe = make_recipe(folder)
        script = (f"import sys; sys.path.insert(0, {os.path.dirname(HERE)!r})\n"
                  "from octomix.torch import OctomixIterable\n"
                  f"it = OctomixIterable({recipe!r}, micro_batch_size=4, rank=0, world_size=1)\n"
                  "for batch in it:\n    print(it._client._process.pid, flush=True)\n    import time; time.sleep(60)\n")
        trainer = subprocess.Popen([sys.executable, "-c", script], env=environment(folder), stdout=subprocess.PIPE, text=True)
        server = int(trainer.stdout.readline())
        trainer.kill()
        trainer.wait()
        trainer.stdout.close()
        def alive():
            try:
                with open(f"/proc/{server}/stat") as stat:
                    return stat.read().split()[2] != "Z"
            except FileNotFoundError:
                return False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and alive():
            time.sleep(0.05)
        alive = alive()
        self.assertFalse(alive, "the server outlived its trainer")
        self.assertEqual([name for name in os.listdir(os.path.join(folder, "shm")) if name.endswith(".ring")], [])


if __name__ == "__main__":
    unittest.main()
