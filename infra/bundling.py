"""Docker-free bundling of the shared Lambda layer.

CDK's default asset bundling runs in a Docker container; pssync must synth on machines without Docker, so
the layer is built locally with pip's cross-platform wheel download (binary wheels only, for the Lambda
runtime's Python and CPU) and the `pssync` package is copied next to its dependencies.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

from infra import runtime

# Provided by the Lambda Python runtime; bundling it would only add megabytes and version skew.
RUNTIME_PROVIDED_DISTRIBUTIONS = frozenset({"boto3", "botocore"})
_IGNORED_SOURCE_PARTS = ("__pycache__", ".pyc", ".egg-info")


def layer_requirements(pyproject: Path) -> list[str]:
    """The project's runtime dependencies (pyproject.toml is the one source), minus what Lambda provides."""
    dependencies: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [req for req in dependencies if _distribution_name(req) not in RUNTIME_PROVIDED_DISTRIBUTIONS]


def _distribution_name(requirement: str) -> str:
    for index, char in enumerate(requirement):
        if not (char.isalnum() or char in "-_."):
            return requirement[:index].lower()
    return requirement.lower()


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in package_dir.rglob("*")
        if path.is_file() and not any(part in str(path) for part in _IGNORED_SOURCE_PARTS)
    )


@jsii.implements(ILocalBundling)
class SharedLayerBundler:
    """Builds `<out>/python/` = runtime dependencies for Lambda arm64/Python 3.12 + the `pssync` package."""

    def __init__(self, package_dir: Path, requirements: Sequence[str]) -> None:
        self._package_dir = package_dir
        self._requirements = list(requirements)

    def pip_command(self, target: Path) -> list[str]:
        return [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", runtime.LAYER_PIP_PLATFORM,
            "--only-binary=:all:",
            "--python-version", runtime.LAYER_PYTHON_VERSION,
            "--implementation", "cp",
            "--target", str(target),
            *self._requirements,
        ]  # fmt: skip

    def asset_hash(self) -> str:
        """Changes whenever the layer's content would: requirements, target platform or package sources."""
        digest = hashlib.sha256()
        digest.update("\0".join(self.pip_command(Path("<out>"))[1:]).encode())
        digest.update(f"precompiled-for-{runtime.LAYER_PYTHON_VERSION}".encode())
        for path in _package_files(self._package_dir):
            digest.update(str(path.relative_to(self._package_dir)).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def bundling_options(self) -> BundlingOptions:
        # The image is never pulled: try_bundle always succeeds locally or raises.
        return BundlingOptions(image=DockerImage.from_registry("local-bundling-only"), local=self)

    def try_bundle(self, output_dir: str, _options: object = None) -> bool:
        # jsii passes the BundlingOptions struct positionally; everything it holds is fixed here.
        site_packages = Path(output_dir) / "python"
        subprocess.run(self.pip_command(site_packages), check=True)  # noqa: S603 - fixed argv, no shell
        shutil.copytree(
            self._package_dir,
            site_packages / self._package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        precompile(site_packages)
        return True


def _runtime_python() -> str | None:
    """An interpreter of the Lambda runtime's version: a .pyc from another version is ignored."""
    version = runtime.LAYER_PYTHON_VERSION
    pyenv = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python"))
    candidates = [str(p) for p in reversed(pyenv)] + [c for c in [shutil.which(f"python{version}")] if c]
    for candidate in candidates:
        probe = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate  # a pyenv shim for an uninstalled version exits 127: skipped
    return None


def precompile(site_packages: Path) -> None:
    """Ship bytecode: /opt is read-only on Lambda, so an uncompiled layer recompiles at every cold start
    (measured: 408 ms -> 235 ms init for ingest_webhook, docs/benchmarks.md). unchecked-hash pycs are
    valid whatever the file timestamps in the zip."""
    python = _runtime_python()
    if python is None:
        print(f"warning: no Python {runtime.LAYER_PYTHON_VERSION} found; the layer ships without bytecode")
        return
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(site_packages)],
        check=True,
    )
