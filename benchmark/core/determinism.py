"""CPU kernels whose float rounding does not depend on the machine's vector width.

Training is chaotic: a 1-ulp difference in one step grows until a seed's final accuracy moves by a
few points. torch picks its vectorized kernels (ATen), MKL its GEMM and FFT code paths and oneDNN its
convolutions by the widest instruction set the CPU has, and 8-lane (AVX2) and 16-lane (AVX-512)
kernels sum in different orders. So the same commit, versions and seeds gave different results on
a CPU with AVX-512 than on one without (measured: the default reference, 3 seeds, test 0.643 ± 0.025
on an AVX-512 EPYC against 0.626 ± 0.007 published from an AVX2 machine; ATEN_CPU_CAPABILITY=avx2
alone reproduced the published numbers exactly on the AVX-512 machine).

`pin_cpu_kernels` fixes all three to their AVX2 paths on every x86-64 CPU that has AVX2 (MKL's
conditional numerical reproducibility, MKL_CBWR=AVX2, is made for this), before torch dispatches
its first kernel. The thread count does not enter: the default run is bit-identical with 1 and 2
threads (measured). Cost on the 2-core AVX-512 EPYC: see the README's "Reproducibility".
A variable the user has set is never overridden; DOFBENCH_NATIVE_KERNELS=1 keeps each library's own
choice (faster on AVX-512, not reproducible across CPUs).
"""
from __future__ import annotations

import os
import platform

# variable -> the value that pins its library to the AVX2 code path
PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def pin_cpu_kernels() -> dict[str, str]:
    """Set the variables of PINS that the user has not set (x86-64 with AVX2 only); returns what was set."""
    if os.environ.get("DOFBENCH_NATIVE_KERNELS") or platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    if not _has_avx2():
        return {}
    set_now = {k: v for k, v in PINS.items() if k not in os.environ}
    os.environ.update(set_now)
    return set_now


def kernel_settings() -> dict[str, str | None]:
    """What decides the rounding of this process's CPU kernels, for provenance: the vector width torch
    dispatches at, the pins in force, and the thread count."""
    import torch  # here, not on top: the pins are environment variables that must be set before torch loads

    return {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **{k: os.environ.get(k) for k in PINS},
            "threads": str(torch.get_num_threads())}
