"""The state API address a command's own Ray is started with (the end-to-end check beside another Ray is in
tests/pipelines/test_own_ray.py)."""

from __future__ import annotations

import os

from pipelines.core import ray_defaults


def test_a_ray_with_a_dashboard_gets_the_state_api_address_of_that_dashboard(monkeypatch):
    monkeypatch.setenv(ray_defaults.STATE_API_ENV, "http://10.0.0.9:8265")  # a user's cluster: not this Ray
    try:
        options = ray_defaults.own_state_api(dashboard=True)
        assert options["include_dashboard"] and options["dashboard_host"] == "127.0.0.1"
        assert os.environ[ray_defaults.STATE_API_ENV] == f"http://127.0.0.1:{options['dashboard_port']}"
    finally:
        ray_defaults.release_state_api()
    assert os.environ[ray_defaults.STATE_API_ENV] == "http://10.0.0.9:8265"


def test_a_ray_without_one_gets_a_loopback_address_and_no_dashboard(monkeypatch):
    monkeypatch.delenv(ray_defaults.STATE_API_ENV, raising=False)
    try:
        options = ray_defaults.own_state_api(dashboard=False)
        assert options == {"include_dashboard": False}
        address = os.environ[ray_defaults.STATE_API_ENV]
        assert address.startswith("http://127.0.0.1:") and int(address.rsplit(":", 1)[1]) > 0
    finally:
        ray_defaults.release_state_api()
    assert ray_defaults.STATE_API_ENV not in os.environ  # as it was: nothing later asks a Ray that is gone
