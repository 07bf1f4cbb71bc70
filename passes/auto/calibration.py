"""Calibration inputs for ``optimize --auto``: the user's arrays (.npz/.npy), a folder of images with a
stated resize and normalisation, or — only when nothing is given, and then said loudly — random draws.

A calibration set is a list of runs (one feed dict each) at the model's input shapes. Arrays whose
leading dim is a multiple of the batch the model takes (its fixed batch, or the bound one) are split
into runs of that batch; images are one per run, stacked into batches when the model's batch is fixed
above 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError, OptionError, first_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
RANDOM_NOTE = ("WARNING: no calibration data was given (--inputs or --images): the errors are measured on random "
               "inputs, which say little about the model's error on real inputs")


@dataclass(frozen=True)
class ImageOptions:
    """How images become model inputs: resized (bilinear, whole image, no crop) to the input's H×W,
    scaled to [0, 1] by ``scale``, then ``(x - mean) / std`` per channel, in RGB order unless ``bgr``."""

    size: tuple[int, int] | None = None  # (height, width); None: the model input's
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    scale: float = 1.0 / 255.0
    bgr: bool = False
    limit: int = 64  # images read at most (sorted by name)

    def describe(self, layout: str, size: tuple[int, int]) -> str:
        order = "BGR" if self.bgr else "RGB"
        return (f"resize to {size[0]}x{size[1]} (bilinear, no crop), {order}, x*{self.scale:.6g}, "
                f"(x - {list(self.mean)}) / {list(self.std)}, {layout}")


@dataclass
class Calibration:
    runs: list[dict[str, Any]]  # one feed per run
    kind: str  # file | images | random
    source: str | None = None
    preprocessing: str | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        shapes = {name: list(array.shape) for name, array in self.runs[0].items()} if self.runs else {}
        return {"kind": self.kind, "source": self.source, "runs": len(self.runs), "shapes": shapes,
                "preprocessing": self.preprocessing, "note": RANDOM_NOTE if self.kind == "random" else None}


def _model_batch(declared: list[Any], bound_batch: int | None) -> int | None:
    first = declared[0] if declared else None
    if isinstance(first, int) and first > 0:
        return first
    return bound_batch


def _split(array: Any, batch: int | None) -> list[Any]:
    if batch is None or array.ndim == 0 or array.shape[0] == batch or array.shape[0] % batch:
        return [array]
    return [array[i:i + batch] for i in range(0, array.shape[0], batch)]


def from_arrays(path: str, session: Any, batch: int | None) -> Calibration:
    """Runs from an .npz (arrays named after the inputs) or .npy (a one-input model) file."""
    import numpy as np

    from analyzer.latency.runtime import input_specs

    specs = input_specs(session)
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        else:
            if len(specs) != 1:
                raise OptionError("inputs", f"{Path(path).name}: a .npy file feeds a model with one input; "
                                  f"this one has {len(specs)}")
            arrays = {specs[0][0]: np.load(path, allow_pickle=False)}
    except AnalyzerError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, zipfile errors for a bad file
        raise OptionError("inputs", f"cannot read {path}: {first_line(e)}") from e
    missing = [name for name, _, _ in specs if name not in arrays]
    if missing:
        raise OptionError("inputs", f"{Path(path).name} has no array for input(s) {', '.join(missing)} "
                          f"(has: {', '.join(sorted(arrays)) or 'none'})")
    split = {name: _split(arrays[name].astype(dtype, copy=False), _model_batch(shape, batch))
             for name, shape, dtype in specs}
    counts = {len(parts) for parts in split.values()}
    runs_count = counts.pop() if len(counts) == 1 else 1
    if runs_count == 1:
        runs = [{name: arrays[name].astype(dtype, copy=False) for name, _, dtype in specs}]
    else:
        runs = [{name: split[name][i] for name in split} for i in range(runs_count)]
    return Calibration(runs, "file", source=Path(path).name)


def _image_layout(shape: list[Any]) -> tuple[str, int]:
    """("NCHW" or "NHWC", channels) of a rank-4 image input."""
    if len(shape) != 4:
        raise OptionError("images", f"need a model whose input is an image batch (rank 4); its input has rank {len(shape)}")
    if shape[1] in (1, 3):
        return "NCHW", shape[1]
    if shape[3] in (1, 3):
        return "NHWC", shape[3]
    raise OptionError("images", f"cannot tell the channel axis of input shape {shape} (expected 1 or 3 channels)")


def from_images(folder: str, session: Any, options: ImageOptions, batch: int | None,
                input_shapes: dict[str, list[int]] | None = None) -> Calibration:
    """Runs from the images in ``folder`` (sorted by name; at most ``options.limit``)."""
    import numpy as np

    from analyzer.latency.runtime import bound_shapes, input_specs

    specs = input_specs(session)
    if len(specs) != 1:
        raise OptionError("images", f"feeds a model with one input; this one has {len(specs)}: "
                          f"{', '.join(name for name, _, _ in specs)} (use --inputs with an .npz)")
    name, declared, dtype = specs[0]
    shape = bound_shapes(specs, input_shapes or {}).get(name, declared)
    layout, channels = _image_layout(shape)
    h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
    size = options.size or (shape[h_axis], shape[w_axis])
    if not all(isinstance(d, int) and d > 0 for d in size):
        raise OptionError("images", f"the input's height and width are not fixed ({shape}); give --image-size HxW "
                          "or --input-shape")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if Path(folder).is_dir() else None
    if files is None:
        raise OptionError("images", f"{folder} is not a folder")
    if not files:
        raise OptionError("images", f"{folder} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    if len(options.mean) != channels or len(options.std) != channels:
        raise OptionError("images", f"mean and std need {channels} value(s) for a {channels}-channel input")
    pictures = [_read_image(path, size, channels, options) for path in files[:options.limit]]
    stacked = np.stack(pictures)  # N, H, W, C
    if layout == "NCHW":
        stacked = stacked.transpose(0, 3, 1, 2)
    stacked = np.ascontiguousarray(stacked.astype(dtype))
    per_run = _model_batch(shape, batch) or 1
    if len(stacked) < per_run:
        raise OptionError("images", f"{len(stacked)} image(s) cannot fill one batch of {per_run}")
    runs = [{name: stacked[i:i + per_run]} for i in range(0, len(stacked) - per_run + 1, per_run)]
    notes = [f"{len(files) - options.limit} image(s) beyond the first {options.limit} were not read"] if len(files) > options.limit else []
    return Calibration(runs, "images", source=Path(folder).name, preprocessing=options.describe(layout, size), notes=notes)


def _read_image(path: Path, size: tuple[int, int], channels: int, options: ImageOptions) -> Any:
    import numpy as np

    try:
        from PIL import Image
    except ImportError as e:  # Pillow is a core dependency; a broken install still gets one line
        raise AnalyzerError("reading images needs Pillow (pip install pillow)") from e
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.float64)
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, DecompressionBombError...
        raise OptionError("images", f"cannot read {path.name}: {first_line(e)}") from e
    if channels == 1:
        pixels = pixels[:, :, None]
    elif options.bgr:
        pixels = pixels[:, :, ::-1]
    return (pixels * options.scale - np.asarray(options.mean)) / np.asarray(options.std)


def random_runs(session: Any, *, samples: int, seed: int, dims: dict[str, int], batch: int | None,
                input_shapes: dict[str, list[int]]) -> Calibration:
    from analyzer.latency.runtime import make_inputs

    made = [make_inputs(session, dims=dims, batch=batch, shapes=input_shapes, seed=seed + i) for i in range(samples)]
    assumed = made[0][1]
    notes = [f"dims nobody bound were taken as 1: {', '.join(assumed)}"] if assumed else []
    return Calibration([feeds for feeds, _ in made], "random", source=f"{samples} draws, seed {seed}", notes=notes)


__all__ = ["Calibration", "ImageOptions", "from_arrays", "from_images", "random_runs", "RANDOM_NOTE"]
