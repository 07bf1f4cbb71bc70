"""``optimize --auto``: the existing rewrites chosen per layer by measured latency on the target provider,
within an output-error budget on calibration inputs (:mod:`passes.auto.search` has the method).

    from passes.auto import AutoOptions, auto_optimize
    result = auto_optimize("vgg16.onnx", AutoOptions(max_error=0.02, images="photos/"), output="vgg16.auto.onnx")
    result.end_to_end.measured_speedup, result.chosen, result.to_dict()
"""

from passes.auto.calibration import ImageOptions
from passes.auto.result import AutoResult, CandidateResult, EndToEnd, LayerResult, SearchStep
from passes.auto.search import AutoOptions, auto_optimize

__all__ = ["auto_optimize", "AutoOptions", "ImageOptions", "AutoResult", "CandidateResult", "EndToEnd",
           "LayerResult", "SearchStep"]
