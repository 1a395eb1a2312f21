"""Data-parallel training under torchrun: DDP, or FSDP2 (`fully_shard`) for models too big for one device.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them training is one process
and every function here is a no-op. Backend: NCCL on GPUs, gloo on CPU.

Global-batch semantics: `optim.batch_size` is the batch of one optimiser step over
all processes. Process r takes clips [r b, (r + 1) b) of it (b = batch / N) and the
gradients are averaged, so N processes x b is 1 process x N b.

Checkpoints hold full (unsharded) tensors, gathered with torch.distributed.checkpoint's
state-dict API, so a run can resume on any number of processes.
"""

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    mode: str = "ddp"

    @property
    def main(self):
        return self.rank == 0


def setup(device="auto", mode="ddp") -> Context:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        from ..config import ConfigError

        raise ConfigError("device = cuda, but this machine has no GPU that torch can use")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Context(rank, world, dev, mode)


def cleanup(ctx: Context):
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap(net, ctx: Context):
    """The module that trains: `net` itself, DDP around it, or `net` sharded in place per U-Net stage."""
    if ctx.world == 1:
        return net
    if ctx.mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        from ..models.unet import Stage

        for module in net.modules():
            if isinstance(module, Stage):
                fully_shard(module)
        return fully_shard(net)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                   gradient_as_bucket_view=True)   # no grad copies, no stride warnings


def no_sync(model, ctx: Context, sync: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulated step."""
    if ctx.world == 1 or sync:
        if ctx.mode == "fsdp" and ctx.world > 1:
            model.set_requires_gradient_sync(True)
        return nullcontext()
    if ctx.mode == "fsdp":
        model.set_requires_gradient_sync(False)
        return nullcontext()
    return model.no_sync()


def all_sum(values, ctx: Context):
    """Sum a list of floats over processes (one all-reduce)."""
    if ctx.world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(ctx: Context):
    if ctx.world > 1:
        dist.barrier()


def full_state(model):
    """Full CPU tensors of a plain, DDP or sharded module, keyed as in the plain module
    (on process 0; the others get an empty dict)."""
    return get_model_state_dict(model, options=FULL)


def full_optimizer_state(model, opt):
    """AdamW state as flat tensors ("param.name:exp_avg") + JSON-able param groups.
    Under several processes only process 0 receives them (the others get empty ones)."""
    sd = get_optimizer_state_dict(model, opt, options=FULL)
    tensors = {f"{name}:{k}": v for name, state in sd.get("state", {}).items() for k, v in state.items()}
    return tensors, sd.get("param_groups", [])


def load_optimizer_state(model, opt, tensors, groups):
    state = {}
    for key, v in tensors.items():
        name, k = key.rsplit(":", 1)
        state.setdefault(name, {})[k] = v
    set_optimizer_state_dict(model, opt, {"state": state, "param_groups": groups},
                             options=StateDictOptions(full_state_dict=True))
