"""``install()`` again with other settings while other threads make OpenAI calls (review 16): every
library was unpatched and patched again, so a call that started in between ran untraced, with no
count and no word. A re-install now keeps the patches of the integrations it still wants."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import autotrace
from autotrace.install import installed_integrations
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")


class _DuringDiscovery:
    """A ``sys.meta_path`` finder (as plugin loaders install): ``install()`` looks its integrations'
    entry points up through it, and the first lookup runs ``call`` on another thread meanwhile."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.ran = False

    def find_spec(self, *args: Any) -> None:
        return None

    def find_distributions(self, *args: Any) -> Iterator[Any]:
        if not self.ran:
            self.ran = True
            worker = threading.Thread(target=self.call)
            worker.start()
            worker.join(30)
        return iter(())


def _ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "during"}])


def test_a_call_made_while_install_switches_settings_is_traced(
        traced: Traced, client: openai.OpenAI, tmp_path: Path) -> None:
    finder = _DuringDiscovery(lambda: _ask(client))
    sys.meta_path.insert(0, finder)
    try:
        autotrace.install(local_store="on", local_store_path=traced.path, integrations=("openai",),
                          export_interval=0.05, service_name="switched")
    finally:
        sys.meta_path.remove(finder)
    assert finder.ran
    assert [(r["type"], r["name"]) for r in traced.records()] == [("generation", "openai.chat")]


def test_a_reinstall_that_turns_an_integration_off_unpatches_it(traced: Traced, client: openai.OpenAI) -> None:
    assert installed_integrations() == ["openai"]
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), export_interval=0.05)
    assert installed_integrations() == []
    _ask(client)
    assert traced.records() == []
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=("openai",), export_interval=0.05)
    _ask(client)
    assert [r["type"] for r in traced.records()] == ["generation"]
