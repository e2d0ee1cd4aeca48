"""The report of `python -m benchmark bench`: its rows as aligned text tables."""
from __future__ import annotations


def table(rows: list[dict], keys: list[str]) -> str:
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    line = lambda vals: "  ".join(str(v).rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(keys)] + [line([r[k] for k in keys]) for r in rows])


def projection_table(rows: list[dict], model: str, batch: int, device) -> str:
    return "\n".join([
        f"\n## projection: {model} (D = {rows[0]['D']:,}), batch {batch}, {device}",
        f"(plain: the hand-written PyTorch step, Adam {rows[0]['plain_adam']}; vs_plain = step / plain, "
        f"overhead = step / dofbench's full step)",
        table(rows, ["projection", "d", "step_ms", "plain_ms", "vs_plain", "full_step_ms", "overhead", "peak_mem_mb"]),
    ])


def on_the_fly_table(rows: list[dict], model: str, batch: int, device) -> str:
    return "\n".join([f"\n## dense on the fly: {model}, batch {batch}, {device}",
                      table(rows, ["d", "stored_matrix_gb", "build_s", "step_s", "losses", "peak_mem_mb"])])


def population_table(rows: list[dict], model: str, batch: int, device) -> str:
    return "\n".join([
        f"\n## population: {model} (D = {rows[0]['D']:,}, d = {rows[0]['d']:,}), batch {batch}, {device}",
        "(speedup = batched / sequential member-steps per second; vs_plain = batched member-steps per "
        "second / plain steps per second; MFLOP per member-step and per plain step, the GFLOP/s each ran at, "
        f"against {rows[0]['matmul_gflops']} GFLOP/s measured on a float32 1024 x 1024 matrix product)",
        table(rows, ["projection", "K", "batched_steps_per_s", "sequential_steps_per_s", "speedup",
                     "plain_steps_per_s", "vs_plain", "member_mflop", "plain_mflop", "batched_gflops",
                     "plain_gflops"]),
    ])


def grouped_table(rows: list[dict], model: str, batch: int, device) -> str:
    forms = ("vmap", "grouped", "unfold", "sequential")
    return "\n".join([
        f"\n## population forward+backward: {model} (D = {rows[0]['D']:,}), batch {batch}, {device}",
        "(member-steps per second, MFLOP per member-step and GFLOP/s of the model part of a population step: "
        "vmap as FlatModel.batched runs it, grouped convolutions, im2col + batched matrix products (unfold), "
        "K single-member calls one after another; "
        f"float32 1024 x 1024 matrix product: {rows[0]['matmul_gflops']} GFLOP/s)",
        table(rows, ["K", *(f"{f}_steps_per_s" for f in forms), *(f"{f}_mflop" for f in forms),
                     *(f"{f}_gflops" for f in forms), "max_rel_err"]),
    ])
