"""Speed and size of the visual HTML report (`analyzer inspect --format html`).

Measures, per model: the analysis (for scale), the layout alone, the whole render (layout + JSON +
page), the page's size, and the time headless Chromium takes from navigation to the page being drawn
(graph, charts and table built: the script sets ``body[data-ready]`` and the ms since navigation), and
how long one wheel-zoom step takes to paint.

Models: ResNet-152 from both exporters and generated 5k / 20k-node graphs (residual Conv/Relu/Conv/Add
blocks with an Inception-like 3-branch block every fourth).

    python benchmarks/bench_html.py [--repeat 3] [--sizes 5000 20000] [--no-browser] [--keep DIR]

Zoo models are exported into .cache/bench/<exporter>/ (needs the `export` extra); Chromium is found
as in the tests (ANALYZER_CHROMIUM, then chromium / chromium-browser / google-chrome on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / ".cache" / "bench"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def export_zoo(name: str, exporter: str) -> Path:
    import exporters

    return exporters.export_cached(name, CACHE / exporter, exporter=exporter)


def synthetic_model(target_nodes: int, path: Path) -> int:
    """About ``target_nodes`` nodes: residual blocks (Conv 3x3 → Relu → Conv 3x3 → Add, 4 nodes) with
    every fourth block an Inception-like one (3 × (Conv → Relu) → Concat → Conv 1x1, 8 nodes).
    8 channels of 8x8; two shared weight tensors keep the file small. IR 10, opset 17."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.1, "w3"),
        numpy_helper.from_array(rng.standard_normal((8, 24, 1, 1)).astype(np.float32) * 0.1, "w1"),
    ]
    nodes: list = []
    x, block = "x", 0
    while len(nodes) < target_nodes:
        b = f"b{block}"
        if block % 4 == 3:
            heads = []
            for k in range(3):
                nodes += [helper.make_node("Conv", [x, "w3"], [f"{b}c{k}"], name=f"{b}/conv{k}", pads=[1, 1, 1, 1]),
                          helper.make_node("Relu", [f"{b}c{k}"], [f"{b}r{k}"], name=f"{b}/relu{k}")]
                heads.append(f"{b}r{k}")
            nodes += [helper.make_node("Concat", heads, [f"{b}cat"], name=f"{b}/concat", axis=1),
                      helper.make_node("Conv", [f"{b}cat", "w1"], [f"{b}out"], name=f"{b}/reduce")]
        else:
            nodes += [helper.make_node("Conv", [x, "w3"], [f"{b}c1"], name=f"{b}/conv1", pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", [f"{b}c1"], [f"{b}r1"], name=f"{b}/relu"),
                      helper.make_node("Conv", [f"{b}r1", "w3"], [f"{b}c2"], name=f"{b}/conv2", pads=[1, 1, 1, 1]),
                      helper.make_node("Add", [f"{b}c2", x], [f"{b}out"], name=f"{b}/add")]
        x = f"{b}out"
        block += 1
    graph = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8, 8, 8])],
                              [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return len(nodes)


def median_seconds(fn, repeat: int) -> tuple[float, object]:
    result = fn()  # warm-up, and the value to keep
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def find_chromium() -> str | None:
    found = os.environ.get("ANALYZER_CHROMIUM")
    if found:
        return found
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Ten wheel steps (five out, five in) on the graph, each timed until two animation frames later (the
# transform applied and painted); the median, in ms. Headless Chromium paces frames at 60 Hz.
ZOOM_STEP_JS = """async () => {
  const svg = document.querySelector('.graph-view svg'), r = svg.getBoundingClientRect();
  const painted = () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  await painted();
  const times = [];
  for (let i = 0; i < 10; i++) {
    const start = performance.now();
    svg.dispatchEvent(new WheelEvent('wheel', { deltaY: i < 5 ? 300 : -300, clientX: r.left + r.width / 2,
      clientY: r.top + r.height / 2, bubbles: true, cancelable: true }));
    await painted();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return (times[4] + times[5]) / 2;
}"""


def browser_ms(browser, page_path: Path, repeat: int) -> tuple[float, float, float]:
    """Medians: ms from navigation to the page drawn (as the page measured it, and from outside), and
    ms per zoom step."""
    inside, outside, zoom = [], [], []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(page_path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=300_000)
        outside.append((time.perf_counter() - start) * 1e3)
        inside.append(float(page.evaluate("document.body.dataset.readyMs")))
        page.locator(".graph-view").scroll_into_view_if_needed()
        zoom.append(float(page.evaluate(ZOOM_STEP_JS)))
        page.close()
    return statistics.median(inside), statistics.median(outside), statistics.median(zoom)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 20000])
    parser.add_argument("--exporters", nargs="*", default=["legacy", "dynamo"])
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the generated pages in this directory")
    args = parser.parse_args()

    import analyzer
    from analyzer.layout import layout
    from analyzer.render import html

    workdir = Path(tempfile.mkdtemp(prefix="bench_html."))
    outdir = args.keep or workdir
    outdir.mkdir(parents=True, exist_ok=True)
    models = [(f"resnet152 ({exporter})", export_zoo("resnet152", exporter)) for exporter in args.exporters]
    for size in args.sizes:
        path = workdir / f"synthetic{size}.onnx"
        synthetic_model(size, path)
        models.append((f"synthetic {size // 1000}k", path))

    browser = playwright = None
    chromium = None if args.no_browser else find_chromium()
    if chromium:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    print(f"{'model':22} {'nodes':>6} {'layers':>6} {'inspect s':>9} {'layout s':>9} {'render s':>9} {'page MB':>8}"
          f" {'load ms (page)':>15} {'load ms (outside)':>18} {'zoom step ms':>13}")
    try:
        for label, path in models:
            start = time.perf_counter()
            report = analyzer.inspect(path)
            inspect_s = time.perf_counter() - start
            layout_s, drawing = median_seconds(lambda: layout(report), args.repeat)
            render_s, text = median_seconds(lambda: html.render(report), args.repeat)
            page_path = outdir / (label.replace(" ", "_").replace("(", "").replace(")", "") + ".html")
            page_path.write_text(text, encoding="utf-8")
            timings = browser_ms(browser, page_path, args.repeat) if browser else (float("nan"),) * 3
            print(f"{label:22} {len(report.nodes):>6} {drawing.layers:>6} {inspect_s:>9.3f} {layout_s:>9.3f} {render_s:>9.3f}"
                  f" {len(text.encode()) / 1e6:>8.2f} {timings[0]:>15.0f} {timings[1]:>18.0f} {timings[2]:>13.1f}", flush=True)
    finally:
        if browser:
            browser.close()
            playwright.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if not chromium and not args.no_browser:
        print("no Chromium found: browser load times not measured", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
