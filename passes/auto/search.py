"""``optimize --auto``: rewrites chosen by measured latency on the target provider, within an error budget
on the user's calibration inputs.

1. Calibration: the user's arrays or images (or random draws, said loudly); the input model's outputs on
   them are the reference, and each searched conv's input activations are captured.
2. Layers: every group-1 Conv with constant weights that carries at least ``min_share`` of the model's
   MACs. Each candidate (:mod:`passes.auto.candidates`) is applied to the conv as a model of its own and
   timed against it interleaved at the layer's real input shape (:mod:`passes.auto.layers`, cached on
   disk); its layer error is measured on the captured activations.
3. Each candidate that the timing finds significantly faster is applied to the whole model alone and its
   output error measured (:mod:`passes.auto.errors`).
4. Greedy (AIMET's greedy ratio selection, NetAdapt's re-evaluation per step): candidates in order of
   latency saved per output error added; each is added to the accepted set, and the set's output error
   measured on the whole model; it stays when the error is within ``max_error``. One rewrite per layer.
5. The chosen set is re-verified (onnx.checker, onnxruntime, outputs on the calibration inputs) and the
   whole model timed against the input as ``analyzer compare`` times. While the verdict is not "faster",
   the choice that saves least is dropped and the rest timed again (``max_attempts``); when nothing pays,
   the model is written unchanged and the result says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from analyzer.clock import StageClock
from analyzer.errors import AnalyzerError, OptionError, first_line
from analyzer.native import contained
from passes.auto import layers as layer_timing
from passes.auto.calibration import Calibration, ImageOptions, from_arrays, from_images, random_runs
from passes.auto.candidates import MAX_MAC_RATIO, Candidate, candidates_for
from passes.auto.errors import comparison_dict, output_error
from passes.auto.evaluations import EvaluationStore, digest
from passes.auto.result import NOTHING_PAYS, AutoResult, CandidateResult, EndToEnd, LayerResult, SearchStep

# progress(stage, done, total, detail): stages "calibration", "layers", "errors", "greedy", "end-to-end"
AutoProgress = Callable[[str, int, int, str], None]
LAYER_ERROR_RUNS = 8  # calibration runs whose activations are kept for the layer errors
HEAVY_LAYER_MACS = 5e8  # layers above this get proportionally longer timings (enough rounds for the test)
VARIATION_NOTE_BELOW = 0.01


@dataclass(frozen=True)
class AutoOptions:
    """The search's settings; every default lives here (the CLI and the service read them)."""

    max_error: float = 0.01  # budget on the output error (passes.auto.errors)
    provider: str = "auto"
    threads: int | None = None
    inputs: str | None = None  # .npz/.npy calibration arrays
    images: str | None = None  # folder of calibration images
    image: ImageOptions = field(default_factory=ImageOptions)
    samples: int = 4  # random calibration draws, when neither inputs nor images is given
    seed: int = 0
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    batch: int | None = None
    layer_seconds: float = 0.6  # interleaved timing per candidate layer (longer for heavy layers)
    end_to_end_seconds: float = 10.0
    min_share: float = 0.005  # layers with less of the model's MACs are not searched
    max_attempts: int = 3  # end-to-end timings before giving up
    cache_dir: str | None = None  # None: passes.auto.layers.default_cache_dir()
    use_cache: bool = True

    def validate(self) -> None:
        if not (self.max_error >= 0 and np.isfinite(self.max_error)):
            raise OptionError("max_error", f"must be a non-negative number, got {self.max_error}")
        if self.inputs and self.images:
            raise AnalyzerError("give calibration inputs or images, not both")
        if self.inputs and not Path(self.inputs).is_file():
            raise OptionError("inputs", f"file {self.inputs} does not exist")
        if self.images and not Path(self.images).is_dir():
            raise OptionError("images", f"{self.images} is not a folder")
        for name in ("samples", "max_attempts"):
            if getattr(self, name) < 1:
                raise OptionError(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("layer_seconds", "end_to_end_seconds"):
            if not getattr(self, name) > 0:
                raise OptionError(name, f"must be positive, got {getattr(self, name)}")
        if not 0 <= self.min_share < 1:
            raise OptionError("min_share", f"must be in [0, 1), got {self.min_share}")

    def bench(self, input_shapes: dict[str, list[int]]) -> Any:
        from analyzer.latency.options import BenchOptions

        return BenchOptions(provider=self.provider, threads=self.threads, input_shapes=input_shapes, seed=self.seed)


def _no_progress(stage: str, done: int, total: int, detail: str) -> None:
    """The progress callback of a caller that gave none."""


WEIGHT_AS_INPUT_ELEMENTS = 1024  # initializers at least this big are fed at run time by the error runs


class _Runner:
    """Any variant of the model run on the calibration inputs (CPU), and its error against the reference.

    The variants share the input's weights: each is serialized without its large initializers, which
    are fed as inputs instead, so that trying a rewrite of a 500 MB model costs its runs, not a copy of
    its weights per session (the reference runs the same way, so both sides round alike)."""

    def __init__(self, calibration: Calibration):
        self.calibration = calibration
        self.reference: list[dict[str, np.ndarray]] = []

    def outputs(self, model: ir.Model, extra: list[str] | None = None, runs: int | None = None) -> list[dict[str, np.ndarray]]:
        """Outputs (and the ``extra`` values, by name) for the first ``runs`` calibration runs (all: None)."""
        from analyzer.latency.runtime import create_session, shape_text

        light, weights = _weights_as_inputs(model, extra or [])
        session = create_session(light, provider="cpu").session
        names = [o.name for o in session.get_outputs()]
        results = []
        for feed in self.calibration.runs[:runs]:
            try:
                results.append(dict(zip(names, session.run(None, {**feed, **weights}))))
            except Exception as e:  # onnxruntime's errors for shapes the model cannot take
                raise OptionError("input_shapes", f"must fit the model: it cannot run at {shape_text(feed)}: "
                                  f"{first_line(e)}") from e
        return results

    def error(self, model: ir.Model) -> tuple[float, list[dict[str, np.ndarray]]]:
        # outputs are paired by position: the rewrite keeps them, but compare them under the reference's names
        runs = self.outputs(model)
        named = [dict(zip(self.reference[0], list(run.values())[:len(self.reference[0])])) for run in runs]
        return output_error(self.reference, named), named


def _weights_as_inputs(model: ir.Model, extra: list[str]) -> tuple[bytes, dict[str, np.ndarray]]:
    """``model`` serialized with its large initializers turned into graph inputs (and the values named in
    ``extra`` added as outputs), and the arrays to feed them."""
    work = model.clone()
    graph = work.graph
    weights: dict[str, np.ndarray] = {}
    for name, value in list(graph.initializers.items()):
        tensor = value.const_value
        if tensor is None or tensor.size < WEIGHT_AS_INPUT_ELEMENTS or value.is_graph_input():
            continue
        del graph.initializers[name]
        value.const_value = None
        value.type = ir.TensorType(tensor.dtype)
        value.shape = ir.Shape(tensor.shape)
        graph.inputs.append(value)
        weights[name] = tensor.numpy()
    if extra:
        by_name = {v.name: v for node in graph for v in node.outputs} | {v.name: v for v in graph.inputs}
        for name in extra:
            if not by_name[name].is_graph_output():
                graph.outputs.append(by_name[name])
    return layer_timing.serialized(work), weights


class _InputsOf:
    """The model's inputs as an onnxruntime session lists them (``get_inputs``), without a session."""

    def __init__(self, model: ir.Model):
        from analyzer.latency.runtime import ORT_TYPES

        type_names = {numpy_name: ort_name for ort_name, numpy_name in ORT_TYPES.items()}
        self.inputs = []
        for value in model.graph.inputs:
            if value.const_value is not None:
                continue
            dtype = value.dtype.numpy().name if value.dtype is not None else "float32"
            shape = [] if value.shape is None else [d if isinstance(d, int) else (d.value if d.value else None)
                                                    for d in value.shape]
            self.inputs.append(type("Arg", (), {"name": value.name, "shape": shape,
                                                "type": type_names.get(dtype, f"tensor({dtype})")})())

    def get_inputs(self) -> list[Any]:
        return self.inputs


def _calibration(session: Any, options: AutoOptions) -> Calibration:
    if options.inputs:
        return from_arrays(options.inputs, session, options.batch)
    if options.images:
        return from_images(options.images, session, options.image, options.batch, options.input_shapes)
    return random_runs(session, samples=options.samples, seed=options.seed, dims=options.dims, batch=options.batch,
                       input_shapes=options.input_shapes)


def _apply(model: ir.Model, candidate: Candidate, node: str) -> ir.Model | str:
    """``model`` with ``candidate`` applied to ``node`` (a copy sharing the weights), or why the pass declined."""
    work = model.clone()
    records, _ = candidate.build(node)._rewrite_all(work.graph, None)
    done = [r for r in records if r.rewritten]
    if not done:
        return records[0].detail if records else "no such node"
    return work


def _conv_targets(model: ir.Model, report: Any, options: AutoOptions) -> tuple[list[ir.Node], list[LayerResult]]:
    """The convs worth searching, and a record for each conv left out (with why)."""
    macs = {n.name: n.macs for n in report.nodes}
    total = max(int(report.totals.macs), 1)
    names = [n.name for n in model.graph]
    chosen, left_out = [], []
    for node in model.graph:
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
            continue
        share = macs.get(node.name, 0) / total
        reason = None
        weight = node.inputs[1] if len(node.inputs) > 1 else None
        if not node.name or names.count(node.name) > 1:
            reason = "no unique node name to select it by"
        elif weight is None or weight.const_value is None or len(weight.const_value.shape) != 4:
            reason = "not a 2-D conv with constant weights"
        elif node.attributes.get_int("group", 1) != 1:
            reason = f"grouped conv (group={node.attributes.get_int('group', 1)}): no candidate applies"
        elif share < options.min_share:
            reason = f"{share:.2%} of the model's MACs (below {options.min_share:.1%}): cannot pay"
        if reason:
            left_out.append(LayerResult(node.name, _describe(node, None), [], int(macs.get(node.name, 0)), skipped=reason))
        else:
            chosen.append(node)
    return chosen, left_out


def _weight_shape(node: ir.Node) -> list[int] | None:
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if weight is None or weight.const_value is None:
        return None
    return [int(d) for d in weight.const_value.shape]


def _describe(node: ir.Node, input_shape: list[int] | None) -> str:
    weight = _weight_shape(node)
    strides = node.attributes.get("strides")
    stride = "x".join(map(str, strides.value)) if strides is not None else "1"
    text = node.op_type
    if weight is not None and len(weight) == 4:
        text += f" {weight[2]}x{weight[3]} {weight[1]}->{weight[0]} stride {stride}"
    if input_shape:
        text += f" at {'x'.join(map(str, input_shape))}"
    return text


def _capture(runner: _Runner, model: ir.Model, targets: list[ir.Node]) -> dict[str, list[np.ndarray]]:
    """Each target conv's input on the first calibration runs, from one run of the model with them exposed."""
    wanted = list(dict.fromkeys(node.inputs[0].name for node in targets))
    runs = runner.outputs(model, extra=wanted, runs=LAYER_ERROR_RUNS)
    return {node.name: [run[node.inputs[0].name] for run in runs] for node in targets}


def _macs(model: ir.Model) -> tuple[int, int]:
    import analyzer

    report = analyzer.inspect(layer_timing.serialized(model))
    return int(report.totals.macs), int(report.totals.params)


def _layer_seconds(options: AutoOptions, macs: int) -> float:
    return min(4.0, options.layer_seconds * max(1.0, macs / HEAVY_LAYER_MACS))


def _search_layer(node: ir.Node, activations_of: Callable[[], dict[str, list[np.ndarray]]], model: ir.Model,
                  options: AutoOptions, bench: Any, table: layer_timing.LatencyTable, store: EvaluationStore,
                  index: int) -> LayerResult:
    """The layer's candidates, measured, or read back from ``store`` and ``table`` when both hold them."""
    record = store.layer(node.name) if options.use_cache else None
    layer = _layer_from_record(node, record, table) if record is not None else None
    if layer is None:
        layer = _measure_layer(node, activations_of()[node.name], model, options, bench, table, store, index)
    return layer


def _layer_from_record(node: ir.Node, record: dict[str, Any], table: layer_timing.LatencyTable) -> LayerResult | None:
    layer = LayerResult(node.name, _describe(node, record["input_shape"]), record["input_shape"], record["macs"])
    for label, entry in record["candidates"].items():
        result = CandidateResult(node.name, label, entry["spec"], record["macs"], entry["macs"], record["params"],
                                 entry["params"])
        layer.candidates.append(result)
        if result.mac_ratio >= MAX_MAC_RATIO:
            result.status = f"cuts too few MACs ({result.mac_ratio:.2f} of the layer's)"
            continue
        timing = table.get(entry["timing_key"])
        if timing is None:
            return None  # measured on another machine or provider: time this layer afresh
        _fill_timing(result, timing, cached=True)
        result.layer_error, result.output_error = entry["layer_error"], entry.get("output_error")
    return layer


def _fill_timing(result: CandidateResult, timing: layer_timing.Timing, *, cached: bool) -> None:
    result.cached = cached
    result.layer_ms_before, result.layer_ms_after = timing.ms_before, timing.ms_after
    result.layer_ratio, result.layer_ci, result.layer_verdict = timing.ratio, timing.ci, timing.verdict
    result.status = "faster" if timing.verdict == "faster" else f"not faster ({timing.verdict})"


def _measure_layer(node: ir.Node, activations: list[np.ndarray], model: ir.Model, options: AutoOptions, bench: Any,
                   table: layer_timing.LatencyTable, store: EvaluationStore, index: int) -> LayerResult:
    from analyzer.latency.numerics import compare_outputs

    shape = list(activations[0].shape)
    opset = model.opset_imports.get("", 17)
    input_type = ir.TensorType(ir.DataType.from_numpy(activations[0].dtype))
    original = layer_timing.layer_model(node, shape, input_type, opset)
    original_bytes = layer_timing.serialized(original)
    macs, params = _macs(original)
    layer = LayerResult(node.name, _describe(node, shape), shape, macs)
    record: dict[str, Any] = {"input_shape": shape, "macs": macs, "params": params, "candidates": {}}
    reference = layer_timing.run_layer(original_bytes, activations)
    weight_shape = _weight_shape(node)
    for candidate in candidates_for((int(weight_shape[2]), int(weight_shape[3])), int(weight_shape[0])):
        rewritten = _apply(original, candidate, node.name)
        if isinstance(rewritten, str):
            continue  # the pass declines this conv (its reason is the pass's, the same for every layer like it)
        new_macs, new_params = _macs(rewritten)
        result = CandidateResult(node.name, candidate.label, candidate.spec(node.name), macs, new_macs, params, new_params)
        layer.candidates.append(result)
        entry: dict[str, Any] = {"spec": result.spec, "macs": new_macs, "params": new_params}
        record["candidates"][candidate.label] = entry
        if result.mac_ratio >= MAX_MAC_RATIO:
            result.status = f"cuts too few MACs ({result.mac_ratio:.2f} of the layer's)"
            continue
        rewritten_bytes = layer_timing.serialized(rewritten)
        key = table.key(original, rewritten)
        timing = table.get(key) if options.use_cache else None
        cached = timing is not None
        if timing is None:
            timing = layer_timing.time_pair(original_bytes, rewritten_bytes, bench, _layer_seconds(options, macs),
                                            options.seed + index)
            table.put(key, timing)
        _fill_timing(result, timing, cached=cached)
        candidate_runs = layer_timing.run_layer(rewritten_bytes, activations)
        result.layer_error = compare_outputs(reference, candidate_runs).relative_l2_error
        entry.update(timing_key=key, layer_error=result.layer_error, output_error=None)
    store.put_layer(node.name, record)
    return layer


def _in_error_order(candidates: list[CandidateResult]) -> list[CandidateResult]:
    """Layer by layer, smallest layer error first (so a layer's first candidate over the budget spares the rest)."""
    layer_order = {node: i for i, node in enumerate(dict.fromkeys(c.node for c in candidates))}
    return sorted(candidates, key=lambda c: (layer_order[c.node], c.layer_error if c.layer_error is not None else 0.0))


def _score(candidate: CandidateResult) -> float:
    """Latency saved per output error added (an exact rewrite ranks by its saving alone)."""
    return candidate.saved_ms / max(candidate.output_error or 0.0, 1e-9)


def _predicted(baseline_ms: float, accepted: list[CandidateResult]) -> float:
    return baseline_ms - sum(c.saved_ms for c in accepted)


def _build(model: ir.Model, chosen: list[CandidateResult], candidates: dict[str, Candidate]) -> ir.Model:
    for choice in chosen:
        model = _apply(model, candidates[choice.label], choice.node)
        if isinstance(model, str):
            raise AnalyzerError(f"internal: {choice.label} no longer applies to {choice.node}: {model}")
    return model


def _verify_final(original: ir.Model, model: ir.Model) -> None:
    """Shapes re-inferred and onnx.checker's full check on the model about to be timed and written."""
    import onnx
    import onnx_ir.passes.common as common_passes

    from passes._base import keep_output_declarations
    from passes._verify import loadable

    try:
        common_passes.ShapeInferencePass()(model)
    except Exception:  # noqa: BLE001 - a model onnx cannot infer keeps the shapes it had; the checker decides
        pass
    keep_output_declarations(original, model)
    with loadable(model) as source:
        try:
            contained("onnx.checker", lambda: onnx.checker.check_model(
                source if isinstance(source, onnx.ModelProto) else str(source), full_check=True))
        except Exception as e:  # checker raises ValidationError, InferenceError and others
            raise AnalyzerError(f"internal: the rewritten model fails onnx.checker: {first_line(e)}") from e


def _end_to_end(before: bytes, after: bytes, chosen: list[CandidateResult], options: AutoOptions, shapes: dict,
                mac_limit: float, error: float, attempt: int) -> EndToEnd:
    import dataclasses

    from analyzer.latency.compare import compare
    from analyzer.latency.options import CompareOptions

    bench = dataclasses.replace(options.bench(shapes), time_budget=options.end_to_end_seconds)
    result = compare(before, after, CompareOptions(bench=bench, check_outputs=False, analyze=False),
                     seed=options.seed + 1000 + attempt)
    return EndToEnd([f"{c.node}: {c.label}" for c in chosen], result.verdict, result.ratio, result.ci, result.p_value,
                    result.rounds, result.a.stats.median * 1e3, result.b.stats.median * 1e3, mac_limit, error)


def _totals(report: Any) -> dict[str, Any]:
    from passes._records import totals_dict

    return totals_dict(report)


def auto_optimize(model: Any, options: AutoOptions | None = None, *, output: str | os.PathLike[str] | None = None,
                  progress: AutoProgress | None = None) -> AutoResult:
    """Search, choose, verify, time and (with ``output``) write; see the module docstring.

    ``model``: a path to an .onnx file (never changed), an ``onnx.ModelProto`` or an ``onnx_ir.Model``."""
    import analyzer
    from analyzer.latency.bench import benchmark
    from passes.run import _check_paths, _read

    options = options or AutoOptions()
    options.validate()
    report_progress = progress or _no_progress
    clock = StageClock()
    path = Path(model) if isinstance(model, (str, os.PathLike)) else None
    target = None if output is None else Path(output)
    _check_paths(path, target)
    source, input_files, model = _read(path, model)
    if target is not None:
        from analyzer.model_files import check_output

        check_output(target, input_files)
    input_bytes = layer_timing.serialized(model)
    clock.lap("load")

    report_progress("calibration", 0, 1, "")
    calibration = _calibration(_InputsOf(model), options)
    runner = _Runner(calibration)
    runner.reference = runner.outputs(model)
    shapes = {name: list(array.shape) for name, array in calibration.runs[0].items()}
    report_before = analyzer.inspect(input_bytes, input_shapes=shapes)
    targets, left_out = _conv_targets(model, report_before, options)
    captured: dict[str, list[np.ndarray]] = {}

    def activations_of() -> dict[str, list[np.ndarray]]:
        if not captured and targets:
            captured.update(_capture(runner, model, targets))
        return captured

    clock.lap("calibration")

    bench = options.bench(shapes)
    baseline = benchmark(input_bytes, replace(bench, time_budget=2.0))
    machine = baseline.machine
    context = {"provider": baseline.provider, "threads": options.threads, "cpu": machine.get("cpu"),
               "logical_cores": machine.get("logical_cores"), "onnxruntime": machine.get("onnxruntime"),
               "gpu": machine.get("gpu")}
    cache_dir = None if not options.use_cache else Path(options.cache_dir) if options.cache_dir else layer_timing.default_cache_dir()
    table = layer_timing.LatencyTable.open(cache_dir, context)
    store = EvaluationStore.open(cache_dir, digest(input_bytes, calibration.runs) if options.use_cache else "")
    baseline_ms = baseline.stats.median * 1e3
    notes = list(calibration.notes)
    if baseline.fell_back:
        from analyzer.latency.runtime import fallback_note

        notes.append(fallback_note(baseline.provider))
    clock.lap("baseline")

    layers: list[LayerResult] = []
    try:
        for i, node in enumerate(targets):
            report_progress("layers", i, len(targets), node.name)
            layers.append(_search_layer(node, activations_of, model, options, bench, table, store, i))
    finally:
        table.save()
    captured.clear()
    clock.lap("layers")

    by_label = {c.label: c for layer in layers for c in candidates_for(*_kernel_cout(layer, model))}
    faster = [c for layer in layers for c in layer.candidates if c.layer_verdict == "faster" and c.saved_ms > 0]
    evaluated: list[CandidateResult] = []
    for i, candidate in enumerate(_in_error_order(faster)):
        report_progress("errors", i, len(faster), f"{candidate.node}: {candidate.label}")
        if candidate.output_error is not None:  # read back from an earlier search of this model and data
            evaluated.append(candidate)
            within = candidate.output_error <= options.max_error
            candidate.status = "eligible" if within else f"over the budget alone ({candidate.output_error:.3g})"
            continue
        worse_than = next((c for c in evaluated if c.node == candidate.node and c.output_error > options.max_error
                           and c.layer_error <= candidate.layer_error), None)
        if worse_than is not None:
            # a rewrite that perturbs the layer more is taken to perturb the outputs more: not run
            candidate.status = (f"not evaluated: {worse_than.label}, with a smaller layer error, "
                                "is already over the budget alone")
            continue
        alone = _apply(model, by_label[candidate.label], candidate.node)
        candidate.output_error, _ = runner.error(alone)
        store.set_output_error(candidate.node, candidate.label, candidate.output_error)
        evaluated.append(candidate)
        within = candidate.output_error <= options.max_error
        candidate.status = "eligible" if within else f"over the budget alone ({candidate.output_error:.3g})"
    store.save()
    clock.lap("errors")

    steps: list[SearchStep] = []
    accepted: list[CandidateResult] = []
    current = model
    pool = sorted((c for c in faster if c.output_error is not None and c.output_error <= options.max_error),
                  key=_score, reverse=True)
    for i, candidate in enumerate(pool):
        if any(c.node == candidate.node for c in accepted):
            candidate.status = "another candidate of this layer was chosen"
            continue
        report_progress("greedy", i, len(pool), f"{candidate.node}: {candidate.label}")
        trial = _apply(current, by_label[candidate.label], candidate.node)
        error, _ = runner.error(trial)
        ok = error <= options.max_error
        trial_set = accepted + [candidate]
        steps.append(SearchStep(candidate.node, candidate.label, ok, error, _predicted(baseline_ms, trial_set),
                                _set_macs(report_before, trial_set), [f"{c.node}: {c.label}" for c in trial_set]))
        if ok:
            accepted.append(candidate)
            current = trial
        else:
            candidate.status = f"rejected: the set's output error would be {error:.3g}"
    clock.lap("greedy")

    end_to_end, attempts, comparison, final_report = None, [], None, report_before
    chosen = list(accepted)
    attempt = 0
    while chosen and attempt < options.max_attempts:
        report_progress("end-to-end", attempt, options.max_attempts, f"{len(chosen)} rewrite(s)")
        final = _build(model, chosen, by_label)
        _verify_final(model, final)
        final_bytes = layer_timing.serialized(final)
        error, final_runs = runner.error(final)
        final_report = analyzer.inspect(final_bytes, input_shapes=shapes)
        limit = report_before.totals.macs / max(final_report.totals.macs, 1)
        timed = _end_to_end(input_bytes, final_bytes, chosen, options, shapes, limit, error, attempt)
        if timed.verdict == "faster" and error <= options.max_error:
            end_to_end, current = timed, final
            comparison = comparison_dict(runner.reference, final_runs)
            break
        attempts.append(timed)
        weakest = min(chosen, key=lambda c: c.saved_ms)
        weakest.status = f"dropped: the set with it was {timed.verdict} end to end (ratio {timed.ratio:.3f})"
        chosen.remove(weakest)
        attempt += 1
    else:
        for c in chosen:
            c.status = "dropped: no set within the attempts paid end to end"
        chosen, current, final_report = [], model, report_before
    for c in chosen:
        c.status = "chosen"
    for layer in layers:
        layer.chosen = next((c.label for c in chosen if c.node == layer.node), None)
    clock.lap("end-to-end")

    if comparison is not None and comparison.get("input_variation") is not None and comparison["input_variation"] < VARIATION_NOTE_BELOW:
        notes.append(f"the outputs vary by only {comparison['input_variation']:.2%} of their size over the calibration "
                     "inputs: the error budget applies to the centered error (see docs/passes.md)")
    result = AutoResult(
        model=current, reason=None if chosen else _why_nothing(faster, pool, attempts, options), source=source, max_error=options.max_error, provider=baseline.provider,
        requested_provider=options.provider, machine=machine, calibration=calibration.describe(),
        baseline_ms=baseline_ms, layers=layers + left_out, steps=steps, chosen=chosen, end_to_end=end_to_end,
        attempts=attempts, comparison=comparison, totals_before=_totals(report_before),
        totals_after=_totals(final_report), cache={**table.describe(), "layers_read_back": store.hits}, notes=notes, timings=clock.laps,
        input_files=input_files,
    )
    if target is not None:
        result.save(target)
    return result


def _why_nothing(faster: list[CandidateResult], pool: list[CandidateResult], attempts: list[EndToEnd],
                 options: AutoOptions) -> str:
    """The outcome of a search that chose nothing: always "no rewrite is faster on this provider", and why."""
    if not faster:
        return NOTHING_PAYS + ": no candidate layer was significantly faster than the original"
    if not pool:
        smallest = min((c.output_error for c in faster if c.output_error is not None), default=None)
        least = "" if smallest is None else f" (the least error alone: {smallest:.3g})"
        return NOTHING_PAYS + f" within max_error={options.max_error:g}: every faster rewrite changes the outputs more{least}"
    if attempts:
        return NOTHING_PAYS + f": {len(attempts)} end-to-end timing(s) found no significant gain"
    return NOTHING_PAYS + f" within max_error={options.max_error:g}: every set of faster rewrites exceeded it together"


def _kernel_cout(layer: LayerResult, model: ir.Model) -> tuple[tuple[int, int], int]:
    node = next(n for n in model.graph if n.name == layer.node)
    shape = _weight_shape(node)
    return (int(shape[2]), int(shape[3])), int(shape[0])


def _set_macs(report_before: Any, rewrites: list[CandidateResult]) -> int:
    """The model's MACs with ``rewrites`` applied: each layer's MACs were counted at its real input shape."""
    return int(report_before.totals.macs) - sum(c.macs_before - c.macs_after for c in rewrites)


__all__ = ["auto_optimize", "AutoOptions", "AutoProgress"]
