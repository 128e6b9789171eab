"""Shared fixtures live in plugin modules, one per owner, so parts can add fixtures without editing this file."""

pytest_plugins = [
    "tests.fixtures_browser", "tests.fixtures_data", "tests.fixtures_processes", "tests.fixtures_ray",
    "tests.fixtures_scheduling",
]
