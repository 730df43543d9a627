"""``Observation.update``'s fields, as recorded: every kind of field (plain ones, metadata, level,
an error, a name it does not know) takes its own way."""

from __future__ import annotations

import autotrace
from tests.helpers import Traced


def test_update_records_each_kind_of_field_its_own_way(traced: Traced) -> None:
    messages = [{"role": "user", "content": "hi"}]
    params = {"temperature": 0.2}
    autotrace.reset_stats()
    with autotrace.start_tool("lookup") as tool:
        tool.update(arguments=messages, model_parameters=params, result=None, level="warning",
                    metadata={"a": 1}, misspelt_usage=3, error="")
        messages.append({"role": "assistant", "content": "later"})  # copied when given: not recorded
        params["top_p"] = 1  # a field no tool has is still held (exported by name)
        assert tool.fields["arguments"] == [{"role": "user", "content": "hi"}]
        assert tool.fields["model_parameters"] == {"temperature": 0.2}
        assert "result" not in tool.fields and tool.fields["level"] == "WARNING"
        assert tool.fields["metadata"] == {"a": 1} and "misspelt_usage" not in tool.fields
        assert "status_message" not in tool.fields  # an empty error is no failure
        tool.update(error="it broke", metadata={"b": 2})
        assert tool.fields["level"] == "ERROR" and tool.fields["status_message"] == "it broke"
        assert tool.fields["metadata"] == {"a": 1, "b": 2}
    assert autotrace.stats().get("fields_unknown") == 1
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"] == "it broke"
    assert record["metadata"]["a"] == 1 and record["metadata"]["b"] == 2


def test_update_leaves_content_out_while_capture_is_off(traced: Traced) -> None:
    with autotrace.content_capture(False), autotrace.start_generation("chat") as gen:
        gen.update(input=["secret"], output="secret", model="gpt-4o")
        assert "input" not in gen.fields and "output" not in gen.fields
        assert gen.fields["model"] == "gpt-4o"
