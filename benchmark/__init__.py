"""dofbench's harness: CLI, configs, datasets, models, the shared training loop, grid runner, tracking."""
from benchmark.core.determinism import pin_cpu_kernels

pin_cpu_kernels()  # before torch dispatches its first kernel: the same numbers on every x86-64 CPU
