"""Cold-start init of ingest_webhook on its real bundle vs an empty handler (docs/toolchain.md "Cold start").

The bundle mirrors what Lambda mounts:

  function/handler.py   functions/ingest_webhook/handler.py               (/var/task)
  layer/python/         pip install --only-binary=:all: --python-version 3.12 --implementation cp
                        --platform manylinux2014_<this machine's CPU> of pyproject's runtime dependencies
                        minus boto3/botocore, plus a copy of shared/pssync    (/opt/python)
  sdk/                  boto3/botocore, which the Lambda runtime provides   (the runtime's site-packages)

It runs on the Lambda runtime's interpreter (pyenv's 3.12; the layer is built for it) with a clean
environment set like the function's. Init is measured in fresh processes with PYTHONDONTWRITEBYTECODE=1:

  import_ms   time.perf_counter() around `import handler` inside the process (Lambda's init phase runs this);
  ready_ms    spawn of the interpreter -> the handler is importable and imported (what a cold start waits
              for here, interpreter start-up included, Lambda's runtime client excluded).

Four handlers are timed round-robin: the empty baseline (`def handler(event, context): return None`), the
function on a layer precompiled with `compileall --invalidation-mode unchecked-hash` (what infra/bundling.py
ships), the function on a layer without bytecode (how it shipped until 2026-11-25: Lambda then compiles
every module at each cold start and cannot cache the result on its read-only /opt), and the precompiled
function with the Powertools Tracer on (`pssync:tracing=sdk`), to price the tracing decision.

pip output and the compiled layer are cached under build/bench/coldstart/ keyed by a hash of their inputs.
Lambda runs arm64 (Graviton); this machine executes the bundle, so wheels are for its own CPU.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.ingest import function_environment

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "build" / "bench" / "coldstart"
PACKAGE_DIR = REPO / "shared" / "pssync"
HANDLER = REPO / "functions" / "ingest_webhook" / "handler.py"
EMPTY_HANDLER = "def handler(event, context):\n    return None\n"
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
# Provided by the Lambda Python runtime (infra/bundling.py RUNTIME_PROVIDED_DISTRIBUTIONS).
RUNTIME_PROVIDED = ("boto3", "botocore")
BUNDLE_LAYOUT_VERSION = "1"  # bump when the way the bundle is built changes

PROBE = """
import sys, time
start = time.perf_counter()
import handler
elapsed = time.perf_counter() - start
sys.stdout.write(f"{elapsed * 1000:.3f} {len(sys.modules)} {int('boto3' in sys.modules)}\\n")
sys.stdout.flush()
"""

ORIGINS = """
import importlib.util, json, os, sys
import handler
report = {"python": sys.version.split()[0], "path": sys.path, "modules": len(sys.modules), "origins": {}}
for name in ("handler", "pssync", "pydantic", "pydantic_core", "aws_lambda_powertools", "standardwebhooks",
             "httpx", "boto3", "botocore"):
    module = sys.modules.get(name)
    if module is None:
        report["origins"][name] = None
        continue
    cached = getattr(module, "__cached__", None)
    report["origins"][name] = {"file": module.__file__, "pyc": bool(cached and os.path.exists(cached))}
print(json.dumps(report))
"""


def find_lambda_python() -> tuple[str, str | None]:
    """The Lambda runtime's interpreter (pyenv 3.12), else a 3.11 with a note saying so."""
    candidates = sorted(glob.glob(f"/root/.pyenv/versions/{LAMBDA_PYTHON}.*/bin/python"))
    candidates += [p for p in (shutil.which(f"python{LAMBDA_PYTHON}"),) if p]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate, None
    fallback = sorted(glob.glob("/root/.pyenv/versions/3.11.*/bin/python")) or [sys.executable]
    return fallback[-1], f"Python {LAMBDA_PYTHON} not found: measured on 3.11 ({fallback[-1]}), not Lambda's"


def _python_version(python: str) -> str:
    out = subprocess.run(  # noqa: S603 - fixed argv
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


def layer_requirements() -> list[str]:
    """pyproject's runtime dependencies minus what Lambda provides (infra/bundling.py does the same)."""
    dependencies: list[str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [req for req in dependencies if _name(req) not in RUNTIME_PROVIDED]


def sdk_requirements() -> list[str]:
    dependencies: list[str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [req for req in dependencies if _name(req) in RUNTIME_PROVIDED]


def _name(requirement: str) -> str:
    return re.split(r"[^A-Za-z0-9._-]", requirement, maxsplit=1)[0].lower()


def pip_platform() -> str:
    machine = platform.machine().lower()
    return "manylinux2014_aarch64" if machine in ("aarch64", "arm64") else f"manylinux2014_{machine}"


def _pip(target: Path, python_version: str, requirements: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", pip_platform(), "--only-binary=:all:", "--python-version", python_version,
        "--implementation", "cp", "--target", str(target), *requirements,
    ]  # fmt: skip


def _run_pip(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"pip failed ({result.returncode}): {' '.join(argv)}")


def _source_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _compile(python: str, *dirs: Path) -> None:
    subprocess.run(  # noqa: S603 - fixed argv
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         *map(str, dirs)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _link_tree(source: Path, target: Path) -> None:
    """Hard-linked copy: cheap, and compileall only adds files, so the source tree stays uncompiled."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not supported
        shutil.copy2(source, target)


def _installed_versions(*dirs: Path) -> dict[str, str]:
    versions = {}
    for directory in dirs:
        for info in sorted(directory.glob("*.dist-info")):
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            versions[name.lower()] = version
    return versions


def build_bundle(python: str, log: Any = print) -> dict[str, Any]:
    """Builds (or reuses) the bundle; returns its paths and what went into it."""
    version = _python_version(python)
    python_version = ".".join(version.split(".")[:2])
    layer_reqs, sdk_reqs = layer_requirements(), sdk_requirements()
    deps_key = _digest(
        BUNDLE_LAYOUT_VERSION, python, version, pip_platform(),
        json.dumps(_pip(Path("<out>"), python_version, layer_reqs)[1:]),
        json.dumps(_pip(Path("<out>"), python_version, sdk_reqs)[1:]),
    )  # fmt: skip
    code_parts: list[str | bytes] = [deps_key, HANDLER.read_bytes(), EMPTY_HANDLER]
    for path in _source_files(PACKAGE_DIR):
        code_parts += [str(path.relative_to(PACKAGE_DIR)), path.read_bytes()]
    bundle_key = _digest(*code_parts)

    deps = CACHE / f"deps-{deps_key}"
    if not (deps / "DONE").exists():
        shutil.rmtree(deps, ignore_errors=True)
        log(f"coldstart: pip install of layer + SDK for {python_version}/{pip_platform()} (cached after)")
        started = time.perf_counter()
        _run_pip(_pip(deps / "layer-src", python_version, layer_reqs))
        _run_pip(_pip(deps / "sdk", python_version, sdk_reqs))
        _link_tree(deps / "layer-src", deps / "layer")
        _compile(python, deps / "layer", deps / "sdk")
        (deps / "DONE").write_text(f"{time.perf_counter() - started:.1f} s\n")
    bundle = CACHE / f"bundle-{bundle_key}"
    cached = (bundle / "DONE").exists()
    if not cached:
        shutil.rmtree(bundle, ignore_errors=True)
        for variant, layer in (("compiled", deps / "layer"), ("shipped", deps / "layer-src")):
            _link_tree(layer, bundle / variant / "layer" / "python")
            shutil.copytree(
                PACKAGE_DIR,
                bundle / variant / "layer" / "python" / PACKAGE_DIR.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            (bundle / variant / "function").mkdir(parents=True)
            shutil.copy2(HANDLER, bundle / variant / "function" / "handler.py")
        (bundle / "empty" / "function").mkdir(parents=True)
        (bundle / "empty" / "function" / "handler.py").write_text(EMPTY_HANDLER)
        _compile(
            python,
            bundle / "compiled" / "layer" / "python" / PACKAGE_DIR.name,
            bundle / "compiled" / "function",
            bundle / "empty" / "function",
        )
        (bundle / "DONE").write_text("ok\n")
    for stale in CACHE.glob("*-*"):
        if stale.is_dir() and stale not in (deps, bundle):
            shutil.rmtree(stale, ignore_errors=True)
    return {
        "python": python,
        "python_version": version,
        "platform": pip_platform(),
        "cached": cached,
        "deps_key": deps_key,
        "bundle_key": bundle_key,
        "dir": bundle,
        "sdk": deps / "sdk",
        "layer_requirements": layer_reqs,
        "sdk_requirements": sdk_reqs,
        "resolved_versions": _installed_versions(deps / "layer-src", deps / "sdk"),
    }


def _variant_paths(bundle: dict[str, Any], variant: str) -> tuple[Path, list[Path]]:
    root: Path = bundle["dir"] / variant
    function = root / "function"
    # Lambda's order: /var/task, /opt/python, then the runtime's site-packages (boto3).
    path = [function]
    if variant != "empty":
        path.append(root / "layer" / "python")
    path.append(bundle["sdk"])
    return function, path


def _child_env(path: list[Path]) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(map(str, path)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(path[0]),
        "TZ": ":UTC",
    }
    env.update(function_environment())
    return env


def _spawn_ready(python: str, function: Path, env: dict[str, str]) -> tuple[float, float, int, bool]:
    """(ready_ms, import_ms, modules loaded, boto3 imported) for one fresh process."""
    start = time.perf_counter()
    with subprocess.Popen(  # noqa: S603 - fixed argv
        [python, "-s", "-c", PROBE], cwd=function, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        ready = (time.perf_counter() - start) * 1000
        process.stdout.read()
    if process.returncode != 0 or not line:
        raise RuntimeError(f"handler import failed in {function} (exit {process.returncode})")
    import_ms, modules, boto3 = line.split()
    return ready, float(import_ms), int(modules), boto3 == "1"


def _import_profile(python: str, function: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    """`-X importtime`, median per module over `runs` processes: top cumulative, and self time per package."""
    cumulative: dict[str, list[int]] = defaultdict(list)
    self_by_top: dict[str, list[int]] = defaultdict(list)
    self_by_module: dict[str, list[int]] = defaultdict(list)
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603 - fixed argv
            [python, "-s", "-X", "importtime", "-c", "import handler"],
            cwd=function, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        totals: dict[str, int] = defaultdict(int)
        seen_handler = False
        for line in result.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if not match:
                continue
            self_us, cum_us, indent, name = int(match[1]), int(match[2]), match[3], match[4]
            if name == "handler" and not indent:
                seen_handler = True
            cumulative[name].append(cum_us)
            self_by_module[name].append(self_us)
            totals[name.split(".")[0]] += self_us
        if not seen_handler:
            raise RuntimeError("-X importtime did not report `handler`")
        for top, total in totals.items():
            self_by_top[top].append(total)
    top_cumulative = sorted(
        ((name, statistics.median(values) / 1000) for name, values in cumulative.items()
         if len(values) == runs),
        key=lambda item: item[1],
        reverse=True,
    )[:10]  # fmt: skip
    top_self = sorted(
        ((name, statistics.median(values) / 1000) for name, values in self_by_module.items()
         if len(values) == runs),
        key=lambda item: item[1],
        reverse=True,
    )[:10]  # fmt: skip
    by_package = sorted(
        ((name, statistics.median(values) / 1000) for name, values in self_by_top.items()),
        key=lambda item: item[1],
        reverse=True,
    )[:10]
    return {
        "runs": runs,
        "top_cumulative_ms": [{"module": n, "ms": round(ms, 1)} for n, ms in top_cumulative],
        "top_self_ms": [{"module": n, "ms": round(ms, 1)} for n, ms in top_self],
        "self_by_top_level_package_ms": [{"package": n, "ms": round(ms, 1)} for n, ms in by_package],
    }


def _paired(
    values: list[tuple[float, float, int, bool]], baseline: list[tuple[float, float, int, bool]]
) -> float:
    """Median of per-round ratios of ready times (each round runs every variant back to back)."""
    return round(statistics.median(v[0] / b[0] for v, b in zip(values, baseline, strict=True)), 2)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p25_ms": round(quartiles[0], 1),
        "p75_ms": round(quartiles[2], 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


def run(runs: int = 15, profile_runs: int = 5, log: Any = print) -> dict[str, Any]:
    python, note = find_lambda_python()
    bundle = build_bundle(python, log=log)
    variants = {
        "empty": "empty",
        "handler": "compiled",
        "handler_shipped": "shipped",
        "handler_sdk_traced": "compiled",
    }
    setups = {name: _variant_paths(bundle, variant) for name, variant in variants.items()}
    envs = {name: _child_env(path) for name, (_, path) in setups.items()}
    # pssync:tracing=sdk: the handler stack builds the Powertools Tracer (X-Ray SDK, patched clients).
    traced_env = envs["handler_sdk_traced"]
    traced_env.pop("POWERTOOLS_TRACE_DISABLED", None)
    traced_env["PSSYNC_TRACING"] = "active"

    origins_out = subprocess.run(  # noqa: S603 - fixed argv
        [python, "-s", "-c", ORIGINS], cwd=setups["handler"][0], env=envs["handler"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    origins = json.loads(origins_out.stdout)
    for name, origin in origins["origins"].items():
        if origin and name != "handler" and not origin["file"].startswith(str(CACHE)):
            raise RuntimeError(f"{name} was imported from outside the bundle: {origin['file']}")

    samples: dict[str, list[tuple[float, float, int, bool]]] = {name: [] for name in variants}
    for name, (function, _) in setups.items():  # warm the page cache; not recorded
        _spawn_ready(python, function, envs[name])
    for _ in range(runs):  # round-robin so drift on the shared machine hits every variant alike
        for name, (function, _) in setups.items():
            samples[name].append(_spawn_ready(python, function, envs[name]))

    results: dict[str, Any] = {}
    for name, rows in samples.items():
        results[name] = {
            "ready": _stats([r[0] for r in rows]),
            "import": _stats([r[1] for r in rows]),
            "modules_loaded": rows[0][2],
            "boto3_imported_at_init": rows[0][3],
        }
    empty, handler, shipped, traced = (results[n]["ready"]["median_ms"] for n in variants)
    return {
        "method": (
            "fresh processes, PYTHONDONTWRITEBYTECODE=1, the function's environment; ready = spawn -> "
            "`import handler` done; import = in-process time of `import handler`; median over runs, "
            "variants round-robin"
        ),
        "runs": runs,
        "python": bundle["python"],
        "python_version": bundle["python_version"],
        "python_note": note,
        "platform": bundle["platform"],
        "lambda_platform": LAMBDA_PLATFORM,
        "platform_note": (
            f"wheels for {bundle['platform']} so the bundle runs here; Lambda runs arm64 ({LAMBDA_PLATFORM})"
        ),
        "bundle_cached": bundle["cached"],
        "bundle_dir": str(bundle["dir"].relative_to(REPO)),
        "layer_requirements": bundle["layer_requirements"],
        "sdk_requirements": bundle["sdk_requirements"],
        "resolved_versions": bundle["resolved_versions"],
        "origins": origins["origins"],
        "variants": results,
        "ratio_ready_handler_to_empty": round(handler / empty, 2),
        "difference_ready_ms": round(handler - empty, 1),
        "paired_ratio_ready_handler_to_empty": _paired(samples["handler"], samples["empty"]),
        "paired_ratio_ready_shipped_to_empty": _paired(samples["handler_shipped"], samples["empty"]),
        "ratio_ready_shipped_to_empty": round(shipped / empty, 2),
        "difference_ready_sdk_traced_to_handler_ms": round(traced - handler, 1),
        "paired_ratio_ready_sdk_traced_to_handler": _paired(
            samples["handler_sdk_traced"], samples["handler"]
        ),
        "difference_ready_shipped_ms": round(shipped - empty, 1),
        "import_profile": _import_profile(python, setups["handler"][0], envs["handler"], profile_runs),
    }


if __name__ == "__main__":
    print(json.dumps(run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 15), indent=2, default=str))
