"""Declarations of the real program for each stack file, shared by the infra tests."""

from __future__ import annotations

import pytest

from devtools.declare import DeclaredStack, declare_stack


@pytest.fixture(scope="session")
def dev() -> DeclaredStack:
    return declare_stack("dev")


@pytest.fixture(scope="session")
def prod() -> DeclaredStack:
    return declare_stack("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> DeclaredStack:
    """Each stack file in turn, for properties every stack must have."""
    return declare_stack(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Loading pulumi_aws modules announces the provider's own deprecated resource types; those
    # warnings are about the SDK, not about this program.
    for item in items:
        if "tests/infra" in item.nodeid:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws"))
