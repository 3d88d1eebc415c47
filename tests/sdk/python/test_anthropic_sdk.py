"""The official `anthropic` Python SDK against a running Portcullis gateway's `/v1/messages`.

Run by crates/server/tests/sdk.rs next to test_openai_sdk.py (same gateway, same environment).
`gpt-test` is served by a mock OpenAI-compatible upstream, so every call here goes through the
gateway's Anthropic-to-OpenAI translation and back. The upstream answers "Hello world" (usage
10/2, streamed as "Hello", " world"), except that a request offering tools, before any tool
result, gets two parallel tool calls: get_weather {"city": "Paris"} and get_time {"tz": "CET"}
(usage 30/12), streamed in argument fragments.
"""

import os

import anthropic
import pytest

ROOT_URL = os.environ["PORTCULLIS_BASE_URL"].removesuffix("/v1")
KEY = os.environ["PORTCULLIS_KEY"]
MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "description": "Current time in a time zone",
        "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
]


def make_client(api_key: str = KEY) -> anthropic.Anthropic:
    # No retries: a failure should show the gateway's first answer, and fast.
    return anthropic.Anthropic(base_url=ROOT_URL, api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture
def client() -> anthropic.Anthropic:
    return make_client()


def test_message_has_text_stop_reason_and_usage(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model="gpt-test", max_tokens=64, system="Be brief.", messages=MESSAGES
    )
    assert m.type == "message"
    assert m.role == "assistant"
    assert m.id.startswith("msg_")
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "Hello world"
    assert m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (10, 2)


def test_stream_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="gpt-test", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello world"
    assert final.content[0].text == "Hello world"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 2
    assert final.usage.input_tokens == 10


def test_raw_stream_events_are_in_order(client: anthropic.Anthropic) -> None:
    events = list(
        client.messages.create(model="gpt-test", max_tokens=64, messages=MESSAGES, stream=True)
    )
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in types and "content_block_stop" in types


def test_parallel_tool_calls_and_round_trip(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model="gpt-test",
        max_tokens=256,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=TOOLS,
    )
    assert m.stop_reason == "tool_use"
    calls = [b for b in m.content if b.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("call_weather", "get_weather", {"city": "Paris"}),
        ("call_time", "get_time", {"tz": "CET"}),
    ]
    assert (m.usage.input_tokens, m.usage.output_tokens) == (30, 12)
    follow_up = client.messages.create(
        model="gpt-test",
        max_tokens=256,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": m.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_weather", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_time", "content": "14:00"},
                ],
            },
        ],
    )
    assert follow_up.stop_reason == "end_turn"
    assert follow_up.content[0].text == "Hello world"


def test_streamed_tool_calls_arrive_complete(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="gpt-test",
        max_tokens=256,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=TOOLS,
        tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("call_weather", "get_weather", {"city": "Paris"}),
        ("call_time", "get_time", {"tz": "CET"}),
    ]
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 12


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="gpt-test", messages=MESSAGES)
    long = client.messages.count_tokens(
        model="gpt-test",
        system="You are a meticulous assistant who answers in full sentences.",
        messages=[{"role": "user", "content": "Tell me about the weather in Paris in spring."}],
        tools=TOOLS,
    )
    assert short.input_tokens > 0
    assert long.input_tokens > short.input_tokens


def test_errors_are_anthropic_errors() -> None:
    with pytest.raises(anthropic.NotFoundError) as not_found:
        make_client().messages.create(model="no-such-model", max_tokens=8, messages=MESSAGES)
    assert not_found.value.status_code == 404
    assert not_found.value.body["type"] == "error"
    assert not_found.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.AuthenticationError):
        make_client("sk-wrong").messages.create(model="gpt-test", max_tokens=8, messages=MESSAGES)
    with pytest.raises(anthropic.BadRequestError) as bad:
        make_client().messages.create(model="gpt-test", max_tokens=8, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_native_anthropic_provider_passes_messages_through(client: anthropic.Anthropic) -> None:
    # `claude-native` is served by an Anthropic upstream: no translation, the events and the
    # message come back as Anthropic sent them.
    m = client.messages.create(model="claude-native", max_tokens=64, messages=MESSAGES)
    assert m.content[0].text == "Hello from Claude"
    assert m.model == "claude-upstream"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (12, 4)
    with client.messages.stream(
        model="claude-native",
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in calls] == [("toolu_01", "get_weather", {"city": "Paris"})]
    assert final.stop_reason == "tool_use"
    count = client.messages.count_tokens(model="claude-native", messages=MESSAGES)
    assert count.input_tokens == 42
