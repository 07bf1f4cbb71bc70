r"""Kernel math of ``stack3x3``: a kxk conv (odd k ≥ 5, group 1) → L = (k−1)/2 stacked 3x3 convs (VGG's "two 3x3 for a 5x5").

Composition. Conv is a cross-correlation, so a conv ``A: (M, Cin, ka, ka)`` followed by ``B: (Cout, M, kb, kb)``
(stride 1, same dilation ``d``) is one conv with the full 2-D convolution of the kernels summed over M:

    C[o, c, p] = Σ_m Σ_{a + b = p} B[o, m, b] · A[m, c, a],    C: (Cout, Cin, ka + kb − 1, ka + kb − 1).

Geometry. All the original padding goes on the first 3x3 conv, the others are unpadded and the last one
takes the stride: valid convs of a zero-padded input compose exactly, so output size and alignment are
the original's (``H + top + bottom − d(k−1)`` before the stride, as for the kxk conv). No bias except the
original one on the last conv.

Modes.
- ``fit`` (default): ``M = mid`` (default Cout). Alternating least squares on ``||W − C(A, B)||_F`` for two
  factors ``A`` (ka = k − 2) and ``B`` (3x3): with ``A`` fixed, ``B`` solves the normal equations
  ``B_(0) · Γ = R`` where ``Γ[(m, b), (m', b')] = Σ_{c, a} A[m, c, a] · A[m', c, a + b − b']`` (an M·9 square
  Gram built from the kernel's auto-correlations) and ``R[o, (m, b)] = Σ_{c, a} W[o, c, a + b] · A[m, c, a]``;
  the ``A`` step is the same problem on the transposed kernel (``Wᵀ = C(Bᵀ, Aᵀ)``), solved by conjugate
  gradients on the normal equations instead when ``M·ka²`` exceeds 4608 (two compositions per step). Init: ``B`` a centred
  1x1 holding the top-M left singular vectors of ``W_(0)``. For k ≥ 7 the ``(k−2)``x``(k−2)`` factor is fitted
  again the same way (greedy). The reported error is that of the composed kernel.
- ``exact``: shift kernels. With ``n = k − 2`` and each kernel position ``p = o + a`` (``o ∈ [0, n)², a ∈ [0, 3)²``,
  ``a = max(0, p − (n − 1))`` per axis) assigned to one pair: if ``Cin ≤ Cout``, ``M = Cin·n²`` channels ``(c, o)``
  carry input channel ``c`` shifted by ``o`` (the first L − 1 convs are 0/1 shift kernels splitting ``o`` into
  steps of at most 2) and the last conv holds ``W[o', c, o + a]`` at ``((c, o), a)``; otherwise ``M = Cout·n²``,
  the first conv computes ``W[o', c, o + a]`` into channel ``(o', o)`` and the remaining convs shift and sum.
- ``init``: He-initialised 3x3 convs (``N(0, 2/fan_in)``, ``relu=True`` puts a ReLU between them): structure
  only, for retraining; reported as not weight-preserving.
"""

from __future__ import annotations

import numpy as np

DIRECT_SOLVE_LIMIT = 4608  # unknowns per row of a direct normal-equation solve (512 channels x 3x3); CG above


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Kernel of ``first`` (M, I, ka, ka) followed by ``second`` (O, M, kb, kb)."""
    ka, kb = first.shape[2], second.shape[2]
    out = np.zeros((second.shape[0], first.shape[1], ka + kb - 1, ka + kb - 1))
    for ay in range(ka):
        for ax in range(ka):
            out[:, :, ay:ay + kb, ax:ax + kb] += np.tensordot(second, first[:, :, ay, ax], axes=([1], [0])).transpose(0, 3, 1, 2)
    return out


def _solve_second(target: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares ``second`` for ``target ≈ compose(first, second)``; also the squared residual."""
    o_count, _, k, _ = target.shape
    m, _, ka, _ = first.shape
    kb = k - ka + 1
    flat_first = first.reshape(m, -1)
    corr: dict[tuple[int, int], np.ndarray] = {}
    for dy in range(-ka + 1, ka):
        for dx in range(-ka + 1, ka):
            left = first[:, :, max(0, -dy):ka - max(0, dy), max(0, -dx):ka - max(0, dx)].reshape(m, -1)
            right = first[:, :, max(0, dy):ka - max(0, -dy), max(0, dx):ka - max(0, -dx)].reshape(m, -1)
            corr[dy, dx] = left @ right.T
    positions = [(y, x) for y in range(kb) for x in range(kb)]
    gram = np.zeros((m, kb * kb, m, kb * kb))
    for i, (by, bx) in enumerate(positions):
        for j, (cy, cx) in enumerate(positions):
            if abs(by - cy) < ka and abs(bx - cx) < ka:
                gram[:, i, :, j] = corr[by - cy, bx - cx]
    gram = gram.reshape(m * kb * kb, m * kb * kb)
    rhs = np.stack([target[:, :, by:by + ka, bx:bx + ka].reshape(o_count, -1) @ flat_first.T for by, bx in positions], axis=2)
    rhs = rhs.reshape(o_count, -1)  # (O, M·kb²), index (m, b)
    ridge = 1e-10 * np.trace(gram) / len(gram) + 1e-300
    solution = np.linalg.solve(gram + ridge * np.eye(len(gram)), rhs.T).T
    residual = float(np.sum(target**2) - np.sum(rhs * solution))
    return solution.reshape(o_count, m, kb, kb), max(residual, 0.0)


def _adjoint(residual: np.ndarray, second: np.ndarray, ka: int) -> np.ndarray:
    """Adjoint of ``A ↦ compose(A, second)``: ``G[m, c, a] = Σ_{o, b} second[o, m, b] · residual[o, c, a + b]``."""
    kb = second.shape[2]
    grad = np.zeros((second.shape[1], residual.shape[1], ka, ka))
    for by in range(kb):
        for bx in range(kb):
            grad += np.tensordot(second[:, :, by, bx], residual[:, :, by:by + ka, bx:bx + ka], axes=([0], [0]))
    return grad


def _solve_first_cg(target: np.ndarray, first: np.ndarray, second: np.ndarray, steps: int = 40) -> np.ndarray:
    """Least-squares ``first`` by conjugate gradients on the normal equations (CGNR), warm-started.

    Used where the direct solve's system (M·ka² unknowns per row) would be too large: each step costs two
    kernel compositions instead of a cubic factorization."""
    ka = first.shape[2]
    x = first.copy()
    residual = target - compose(x, second)
    z = _adjoint(residual, second, ka)
    direction, z_norm = z.copy(), float(np.sum(z * z))
    for _ in range(steps):
        if z_norm <= 1e-30:
            break
        image = compose(direction, second)
        alpha = z_norm / max(float(np.sum(image * image)), 1e-300)
        x += alpha * direction
        residual -= alpha * image
        z = _adjoint(residual, second, ka)
        new_norm = float(np.sum(z * z))
        direction = z + (new_norm / z_norm) * direction
        z_norm = new_norm
    return x


def fit_pair(target: np.ndarray, mid: int, ka: int, iters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """ALS for ``target ≈ compose(A, B)`` with ``A: (mid, Cin, ka, ka)``, ``B: (Cout, mid, 3, 3)``."""
    cout = target.shape[0]
    flat = target.reshape(cout, -1)
    eigenvalues, vectors = np.linalg.eigh(flat @ flat.T)
    top = vectors[:, np.argsort(eigenvalues)[::-1][:mid]]
    second = 1e-3 * rng.standard_normal((cout, mid, 3, 3))  # lets channels beyond Cout take part
    second[:, : top.shape[1], 1, 1] += top
    total = float(np.sum(target**2)) or 1.0
    previous = np.inf
    first = np.zeros((mid, target.shape[1], ka, ka))
    for _ in range(max(iters, 1)):
        if mid * ka * ka > DIRECT_SOLVE_LIMIT:
            first = _solve_first_cg(target, first, second)
        else:
            first_t, _ = _solve_second(target.transpose(1, 0, 2, 3), second.transpose(1, 0, 2, 3))
            first = first_t.transpose(1, 0, 2, 3)
        second, residual = _solve_second(target, first)
        if previous - residual < 1e-4 * total:
            break
        previous = residual
    return first, second


def fit_stack(weight: np.ndarray, mid: int, iters: int, rng: np.random.Generator) -> list[np.ndarray]:
    """3x3 kernels, first applied first, whose composition approximates ``weight`` (greedy for k ≥ 7)."""
    k = weight.shape[2]
    first, last = fit_pair(weight, mid, k - 2, iters, rng)
    return (fit_stack(first, mid, iters, rng) if k - 2 > 3 else [first]) + [last]


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis assignment of kernel position p ∈ [0, n + 2) to (o ∈ [0, n), a ∈ [0, 3)) with o + a = p."""
    p = np.arange(n + 2)
    a = np.maximum(0, p - (n - 1))
    return p - a, a


def _steps(offset: int, layers: int) -> list[int]:
    """Split a shift ``offset`` into ``layers`` steps of at most 2 (greedy)."""
    steps, left = [], offset
    for _ in range(layers):
        steps.append(min(2, left))
        left -= steps[-1]
    return steps


def exact_stack(weight: np.ndarray) -> list[np.ndarray]:
    """Shift-kernel construction (see the module docstring); composes to ``weight`` exactly."""
    cout, cin, k, _ = weight.shape
    n, layers = k - 2, (k - 1) // 2
    offsets = [(y, x) for y in range(n) for x in range(n)]
    o_of, a_of = _split(n)
    copy_first = cin <= cout
    groups = cin if copy_first else cout
    mid = groups * len(offsets)
    # the kxk weight placed at (group channel, offset o, 3x3 position a): "core" of the construction
    core = np.zeros((cout, cin, len(offsets), 3, 3))
    index = {o: i for i, o in enumerate(offsets)}
    for py in range(k):
        for px in range(k):
            core[:, :, index[o_of[py], o_of[px]], a_of[py], a_of[px]] = weight[:, :, py, px]
    kernels = []
    shift_layers = layers - 1
    if copy_first:
        for layer in range(shift_layers):
            kern = np.zeros((mid, cin if layer == 0 else mid, 3, 3))
            for c in range(cin):
                for i, (oy, ox) in enumerate(offsets):
                    src = c if layer == 0 else c * len(offsets) + i
                    kern[c * len(offsets) + i, src, _steps(oy, shift_layers)[layer], _steps(ox, shift_layers)[layer]] = 1
            kernels.append(kern)
        kernels.append(core.transpose(0, 1, 2, 3, 4).reshape(cout, mid, 3, 3))
    else:
        kernels.append(core.transpose(0, 2, 1, 3, 4).reshape(mid, cin, 3, 3))
        for layer in range(shift_layers):
            last = layer == shift_layers - 1
            kern = np.zeros((cout if last else mid, mid, 3, 3))
            for o in range(cout):
                for i, (oy, ox) in enumerate(offsets):
                    dst = o if last else o * len(offsets) + i
                    kern[dst, o * len(offsets) + i, _steps(oy, shift_layers)[layer], _steps(ox, shift_layers)[layer]] = 1
            kernels.append(kern)
    return kernels
