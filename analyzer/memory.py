"""Memory by liveness over the execution order, and the training-memory estimate.

Inference: weights are resident for the whole run and reported apart (``weight_bytes``). An
activation tensor (graph input or node output) is live from its producer (graph inputs: from the
start) until its last consumer has run; graph outputs stay live to the end. No buffer reuse or
in-place execution is assumed, so this is what a naive allocator holds.

- ``live_after[k]``: bytes live once node k has run (its inputs that nobody reads later are freed);
- peak: the maximum over nodes of the bytes live *while* node k runs — everything live before it plus
  its outputs, since its inputs are freed only after it ran; the node where it occurs is reported.

Training (``batch`` N, optimizer): weights + gradients (one per trainable parameter) + optimizer state
(sgd: none, momentum: one buffer, adam: two buffers per trainable parameter) + activations kept for
backward (every node output, scaled from the analyzed batch to N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analyzer.errors import OptionError
from analyzer.report import TrainingMemory

OPTIMIZER_STATE_BUFFERS = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass
class Liveness:
    live_after: list[int]  # per position in the execution order
    peak_bytes: int
    peak_position: int | None  # position in the order where the peak occurs


def liveness(
    order: Sequence[int],
    node_inputs: Mapping[int, Sequence[str]],
    node_outputs: Mapping[int, Sequence[str]],
    tensor_bytes: Mapping[str, int],
    graph_inputs: Sequence[str],
    graph_outputs: Sequence[str],
) -> Liveness:
    """Live bytes after each node and the peak while a node runs (see the module docstring).

    ``tensor_bytes`` holds every activation tensor (weights excluded); tensors missing from it are
    not counted (unknown size or a weight).
    """
    position = {node: k for k, node in enumerate(order)}
    end = len(order)  # "after the last node": graph outputs live until then
    last_use: dict[str, int] = {}
    for node in order:
        for name in node_inputs[node]:
            if name in tensor_bytes:
                last_use[name] = max(last_use.get(name, -1), position[node])
    for name in graph_outputs:
        last_use[name] = end

    # free_at[k]: bytes released after node k ran
    free_at = [0] * (end + 1)
    live = 0
    for name in graph_inputs:
        if name in tensor_bytes:
            live += tensor_bytes[name]
            free_at[max(last_use.get(name, 0), 0)] += tensor_bytes[name]
    live_after: list[int] = []
    peak, peak_position = live, None
    for k, node in enumerate(order):
        allocated = sum(tensor_bytes.get(name, 0) for name in node_outputs[node] if name)
        live += allocated
        if live > peak:
            peak, peak_position = live, k
        for name in node_outputs[node]:
            if name in tensor_bytes and name not in last_use:
                free_at[k] += tensor_bytes[name]  # produced but never read: freed at once
            elif name in tensor_bytes:
                free_at[last_use[name]] += tensor_bytes[name]
        live -= free_at[k]
        live_after.append(live)
    return Liveness(live_after, peak, peak_position)


def training_memory(
    *,
    batch: int,
    analyzed_batch: int,
    optimizer: str,
    weight_bytes: int,
    trainable_bytes: int,
    activation_bytes: int,
) -> TrainingMemory:
    """Estimate for training at ``batch``; activations were measured at ``analyzed_batch``."""
    if optimizer not in OPTIMIZER_STATE_BUFFERS:
        raise OptionError("optimizer", f"{optimizer!r} is unknown; choose one of {', '.join(OPTIMIZER_STATE_BUFFERS)}")
    if batch < 1:
        raise OptionError("batch", f"must be positive, got {batch}")
    activations = activation_bytes * batch // max(analyzed_batch, 1)
    return TrainingMemory(
        batch=batch,
        optimizer=optimizer,
        weights=weight_bytes,
        gradients=trainable_bytes,
        optimizer_state=OPTIMIZER_STATE_BUFFERS[optimizer] * trainable_bytes,
        activations=activations,
    )
