"""A small compiled kernel for the Walsh-Hadamard transform on CPU, built with the system C compiler
at first use and cached; `available()` is False (and callers use pure torch) when that fails.

Why: in torch, a transform of length L is a chain of GEMMs and axis rotations that leave the data's
cache lines scattered; an in-place butterfly touches every element log2(L) times, in order, in cache.
Plain C with ctypes (no torch headers) compiles in about a second.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from torch import Tensor

SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* Unnormalized in-place Walsh-Hadamard transform of `rows` contiguous rows of length L (a power of 2). */
static void fwht_row(float *v, int64_t L) {
    /* First three stages fused as a radix-8 butterfly on each group of 8: no short inner loops. */
    if (L >= 8) {
        for (int64_t i = 0; i < L; i += 8) {
            float a0 = v[i] + v[i+1], a1 = v[i] - v[i+1], a2 = v[i+2] + v[i+3], a3 = v[i+2] - v[i+3];
            float a4 = v[i+4] + v[i+5], a5 = v[i+4] - v[i+5], a6 = v[i+6] + v[i+7], a7 = v[i+6] - v[i+7];
            float b0 = a0 + a2, b1 = a1 + a3, b2 = a0 - a2, b3 = a1 - a3;
            float b4 = a4 + a6, b5 = a5 + a7, b6 = a4 - a6, b7 = a5 - a7;
            v[i] = b0 + b4; v[i+1] = b1 + b5; v[i+2] = b2 + b6; v[i+3] = b3 + b7;
            v[i+4] = b0 - b4; v[i+5] = b1 - b5; v[i+6] = b2 - b6; v[i+7] = b3 - b7;
        }
    } else {
        for (int64_t h = 1; h < L; h <<= 1)
            for (int64_t i = 0; i < L; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) { float a = v[j], b = v[j + h]; v[j] = a + b; v[j + h] = a - b; }
        return;
    }
    for (int64_t h = 8; h < L; h <<= 1) {
        for (int64_t i = 0; i < L; i += 2 * h) {
            float *restrict p = v + i, *restrict q = v + i + h;
            for (int64_t j = 0; j < h; j++) { float a = p[j], b = q[j]; p[j] = a + b; q[j] = a - b; }
        }
    }
}

void fwht_f32(float *x, int64_t rows, int64_t L, int64_t first, int64_t step) {
    for (int64_t r = first; r < rows; r += step) fwht_row(x + r * L, L);
}
"""

_lib = None
_tried = False
_lock = threading.Lock()


def _build() -> ctypes.CDLL | None:
    tag = hashlib.sha256((SOURCE + sys.platform).encode()).hexdigest()[:12]
    folder = Path(os.environ.get("DOFBENCH_CACHE", Path.home() / ".cache" / "dofbench")) / "kernels"
    lib = folder / f"fwht-{tag}.so"
    if not lib.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src, out = Path(tmp) / "fwht.c", Path(tmp) / "fwht.so"
            src.write_text(SOURCE)
            cc = os.environ.get("CC", "cc")
            subprocess.run([cc, "-O3", "-march=native", "-fPIC", "-shared", "-std=c99", str(src), "-o", str(out)],
                           check=True, capture_output=True, timeout=120)
            os.replace(out, lib)  # atomic: concurrent builders never load a half-written file
    handle = ctypes.CDLL(str(lib))
    handle.fwht_f32.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    handle.fwht_f32.restype = None
    return handle


def available() -> bool:
    """Whether the compiled kernel can be used (built now if it has not been tried yet)."""
    global _lib, _tried
    if os.environ.get("DOFBENCH_NO_NATIVE"):
        return False
    with _lock:
        if not _tried:
            _tried = True
            try:
                _lib = _build()
            except (OSError, subprocess.SubprocessError):
                _lib = None
    return _lib is not None


def fwht_inplace(x: Tensor) -> Tensor:
    """In-place transform of a contiguous CPU float32 tensor (..., L) along its last axis; returns x.

    One thread: splitting rows over Python threads cost more than it saved (measured), and the
    single-threaded butterfly is already 1.5-3.5x faster than the two-thread GEMM chain.
    """
    L = x.shape[-1]
    _lib.fwht_f32(x.data_ptr(), x.numel() // L, L, 0, 1)
    return x
