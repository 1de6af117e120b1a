"""Fixtures of the training tests: small real NSMC splits, and one local Ray shared by a module's tests.

Sharing one Ray (the CLI joins it through `RAY_ADDRESS` or the already initialised driver) saves a Ray
start-up per run; the module fixture shuts it down so no Ray outlives the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.prepare import PrepareConfig, prepare


def _prepare(nsmc_path: Path, output: Path, train_rows: int, scheme: str = "binary") -> Path:
    # eval and test take 10% each: a sample of train_rows / 0.8 leaves train_rows to train on
    prepare(PrepareConfig(input=str(nsmc_path), output=str(output), scheme=scheme, sample=int(train_rows / 0.8)))
    return output


@pytest.fixture(scope="session")
def nsmc_2k(tmp_path_factory, nsmc_path) -> Path:
    """2,000 training reviews (+250 eval, 250 test), binary NSMC labels."""
    return _prepare(nsmc_path, tmp_path_factory.mktemp("nsmc") / "2k", 2000)


@pytest.fixture(scope="session")
def nsmc_6k(tmp_path_factory, nsmc_path) -> Path:
    """6,000 training reviews (+750 eval, 750 test), binary NSMC labels."""
    return _prepare(nsmc_path, tmp_path_factory.mktemp("nsmc") / "6k", 6000)


@pytest.fixture(scope="session")
def nsmc_ternary(tmp_path_factory, nsmc_path) -> Path:
    """3,000 training reviews with three classes (부정 / 중립 / 긍정)."""
    return _prepare(nsmc_path, tmp_path_factory.mktemp("nsmc") / "ternary", 3000, scheme="ternary")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with one logical CPU per training worker plus one for Ray Data; its GCS address."""
    import ray

    ray.init(address="local", num_cpus=3, include_dashboard=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
