"""``cleanup``: pass-through nodes and dead code removed. Exact.

Identity nodes and inference-mode Dropout (no mask used, ``training_mode`` absent or a constant false)
pass their input through: their consumers read the input instead and the node goes. Then nodes whose
outputs are unused and initializers nobody reads are removed (onnx-ir's ``RemoveUnusedNodesPass``). A
graph output keeps its name: the producer's value is renamed.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir
import onnx_ir.passes.common as common_passes

from passes._base import Progress, RewritePass
from passes._records import Skip, TargetRecord


class CleanupPass(RewritePass):
    """Removes Identity, inference Dropout, unused nodes and unused initializers.

    Declines: a Dropout whose mask is used or whose training_mode is not a constant false; a pass-through
    that connects a graph input straight to a graph output (removing it would change the interface)."""

    name = "cleanup"
    op_types = ("Identity", "Dropout")

    @property
    def exact(self) -> bool:
        return True

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        if node.op_type == "Dropout":
            if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
                return Skip("Dropout mask output is used")
            training = node.inputs[2] if len(node.inputs) > 2 else None
            if training is not None and (training.const_value is None or bool(training.const_value.numpy())):
                return Skip("Dropout training_mode is not a constant false")
        source, out = node.inputs[0], node.outputs[0]
        if out.is_graph_output() and (source.is_graph_input() or source.is_graph_output() or source.is_initializer()):
            return Skip("it connects a graph input, output or initializer straight to a graph output")
        name = out.name
        ir.convenience.replace_all_uses_with(out, source, replace_graph_outputs=True)
        graph.remove(node, safe=True)
        if source.is_graph_output() and not out.uses():
            source.name = name  # keep the graph interface
        return TargetRecord(node.name, node.op_type, True, "removed (input passed through)")

    def _rewrite_all(self, graph: ir.Graph, report: Any,
                     progress: Progress | None = None) -> tuple[list[TargetRecord], list[ir.Value]]:
        records, new_values = super()._rewrite_all(graph, report, progress)
        nodes_before = {n.name: n.op_type for n in graph}
        initializers_before = set(graph.initializers)
        model = ir.Model(graph, ir_version=10)
        common_passes.RemoveUnusedNodesPass()(model)
        kept = {n.name for n in graph}
        records += [TargetRecord(n, op, True, "removed: outputs unused") for n, op in nodes_before.items() if n not in kept]
        records += [TargetRecord(n, "initializer", True, "removed: unused initializer")
                    for n in sorted(initializers_before - set(graph.initializers))]
        return records, new_values
