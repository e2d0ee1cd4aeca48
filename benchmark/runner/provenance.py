"""What a published result was made from and on, written beside it as provenance.json.

A committed result is a promise that main regenerates it: `python -m benchmark verify FOLDER` re-runs
`config` and compares. What decides whether the numbers can be identical is here too: the commit, the
versions, the CPU and the kernels torch dispatches on it (benchmark.core.determinism), the thread count, and
the memory budget (it decides which members share a batched kernel call, and so their rounding).
Peak resident memory is measured per stage (Linux: VmHWM, reset between stages through clear_refs).
"""
from __future__ import annotations

import ast
import hashlib
import json
import platform
import resource
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from benchmark.core.determinism import kernel_settings
from benchmark.core.errors import UserError
from benchmark.core.overrides import SHARED_FLAGS

FILE = "provenance.json"


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} elsewhere)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def cpu() -> dict[str, str]:
    """The CPU as far as it can change rounding. The model name alone does not tell it: 'AMD EPYC' was
    seen both as family 25 model 1 (AVX2) and as a Zen 4 part with AVX-512."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    isa = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), platform.machine())
    return {"cpu_model": info.get("model name") or platform.processor() or platform.machine(),
            "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}", "cpu_vector_isa": isa}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("torch", "numpy", "mlflow", "dofbench"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def git_commit(folder: Path | None = None) -> dict[str, str | bool | None]:
    """The checkout's commit and whether it had uncommitted changes (None outside a git checkout,
    e.g. an installed wheel)."""
    here = folder or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def machine() -> dict[str, str]:
    """Everything about this machine and process that can change a float result."""
    return {**cpu(), "machine": platform.machine(), "os": platform.platform(),
            **versions(), **kernel_settings()}


def same_machine(a: dict, b: dict) -> list[str]:
    """The fields of `machine()` in which a and b differ ([]: identical results are expected)."""
    keys = ("cpu_model", "cpu_family_model", "cpu_vector_isa", "machine", "python", "torch", "numpy", "torch_cpu_capability", "ATEN_CPU_CAPABILITY",
            "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "threads")
    return [k for k in keys if a.get(k) != b.get(k)]


# --- peak resident memory per stage -----------------------------------------------------------------

def peak_rss_mb() -> float:
    """The process's peak resident memory (MiB) since the last reset_peak_rss() (or its start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def reset_peak_rss() -> bool:
    """Start a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS). False where
    the OS cannot, and peaks then count from the process's start."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class StageMeter:
    """Wall time and peak resident memory of consecutive stages: lap(name) closes the stage so far."""

    def __init__(self):
        self.wall_s: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self.resets = reset_peak_rss()
        self.git = git_commit()  # at the start: what the checkout holds when the result is written may be newer
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.wall_s[stage] = round(now - self._t, 3)
        self.peak_rss_mb[stage] = round(peak_rss_mb(), 1)
        self._t = now
        reset_peak_rss()

    def as_dict(self) -> dict:
        return {"wall_s": self.wall_s, "peak_rss_mb": self.peak_rss_mb,
                "peak_rss_per_stage": self.resets}  # False: each peak counts from the process's start


def record(config: dict, command: str, stages: StageMeter, memory_budget_mb: float | None, device: str,
           extra: dict | None = None) -> dict:
    """provenance.json's content. config: what `verify` re-runs (a run's resolved RunConfig, or a study's
    settings); memory_budget_mb: None where the work has no population budget; code: code_fingerprint()."""
    return {"command": command, **stages.git, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device": device, "memory_budget_mb": memory_budget_mb, **machine(), **stages.as_dict(),
            **(extra or {}), "config": config, "code": code_fingerprint()}


def write(folder: Path, content: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    path.write_text(json.dumps(content, indent=2, default=str) + "\n")
    return path


def read(folder: Path) -> dict:
    path = Path(folder) / FILE
    if not path.is_file():
        raise UserError(f"no {FILE} in {folder}; accepted: a result folder written by `python -m benchmark run "
                        f"out=FOLDER` (or a study's --out), e.g. leaderboards/results/mnist1d-mlp")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); restore it from git") from None


def command_line(argv: list[str]) -> str:
    """`python -m benchmark VERB ARGS` as a user would type it again: without the store it logged to, in
    either spelling (tracking.uri=URI, --tracking-uri URI): it changes no number, and the path it names is
    rarely on the next machine."""
    flag = SHARED_FLAGS["tracking.uri"]
    kept = [a for i, a in enumerate(argv)
            if a != flag and not a.startswith(("tracking.uri=", flag + "=")) and (i == 0 or argv[i - 1] != flag)]
    return "python -m benchmark " + shlex.join(kept)


# --- which code a result depends on ------------------------------------------------------------------

PACKAGES = ("benchmark", "subspaces", "baselines", "leaderboards")
ROOT = Path(__file__).resolve().parents[2]
# What records and checks results, and makes none of their numbers: never part of a fingerprint (the verb
# registry only dispatches: registering a new verb moves no committed number).
TOOLING = ("benchmark/runner/provenance.py", "benchmark/verbs/verify.py", "benchmark/verbs/golden.py", "leaderboards/compare.py",
           "leaderboards/golden.py", "benchmark/verbs/__init__.py")


def _source_hash(path: Path) -> str:
    """A module's code without its comments and docstrings (ast), so that editing prose moves nothing."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def code_fingerprint() -> dict[str, str]:
    """{project file: hash of its code} for every module of the project this process has imported: what
    a result written now depends on. A committed result whose files' code changed may have moved."""
    out = {}
    for name, module in sorted(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name.split(".")[0] not in PACKAGES or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        try:
            rel = str(path.relative_to(ROOT))
            if rel not in TOOLING:
                out[rel] = _source_hash(path)
        except (ValueError, OSError, SyntaxError):
            continue
    return out


def stale_files(recorded: dict[str, str]) -> list[str]:
    """The files of a recorded fingerprint whose code is not what it was (or that are gone)."""
    out = []
    for file, digest in recorded.items():
        if file in TOOLING:  # recorded before it was counted as tooling
            continue
        path = ROOT / file
        if not path.is_file() or _source_hash(path) != digest:
            out.append(file)
    return out


def write_study(folder: Path, verb: str, argv: list[str], settings: dict, stages: StageMeter, device: str,
                memory_budget_mb: float | None = None, rerun_args: list[str] = ()) -> Path:
    """provenance.json of a study's --out folder: `verify` re-runs `argv` + `rerun_args` (what makes it
    repeatable, e.g. the memory budget it computed), its --out and --tracking-uri replaced by scratch ones,
    and compares the folder's tables."""
    stages.lap("study")
    return write(folder, record(settings, command_line([verb, *argv]), stages, memory_budget_mb, device,
                                {"verb": verb, "argv": [*argv, *rerun_args]}))
