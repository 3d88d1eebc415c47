"""The official `openai` Python SDK against a running Portcullis gateway.

Run by crates/server/tests/sdk.rs (which starts the gateway and a mock upstream); by hand:

    scripts/install-sdks.sh
    PORTCULLIS_BASE_URL=http://127.0.0.1:PORT/v1 PORTCULLIS_KEY=sk-... \
        .sdk/venv/bin/python -m pytest -q -p no:cacheprovider tests/sdk/python

The gateway's config (see sdk.rs) serves `gpt-test` and `embed-test` from a mock OpenAI
upstream that always answers "Hello world" (usage 10/2/12, streamed as "Hello", " world") and
3-dimensional embeddings, and `mock-chat` from the gateway's built-in mock provider
(8 deterministic words, sent 2 per chunk).
"""

import os

import openai
import pytest

BASE_URL = os.environ["PORTCULLIS_BASE_URL"]
KEY = os.environ["PORTCULLIS_KEY"]
MESSAGES = [{"role": "user", "content": "Say hello"}]


def make_client(api_key: str = KEY) -> openai.OpenAI:
    # No retries: a failure should show the gateway's first answer, and fast.
    return openai.OpenAI(base_url=BASE_URL, api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture
def client() -> openai.OpenAI:
    return make_client()


def test_chat_returns_content_and_usage(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "Hello world"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (10, 2, 12)


def test_chat_with_the_builtin_mock_provider(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="mock-chat", messages=MESSAGES)
    content = r.choices[0].message.content
    assert content and len(content.split()) == 8
    assert r.usage is not None and r.usage.completion_tokens == 8


def test_stream_deltas_join_to_the_full_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # Not asked for: the gateway asks upstream for usage anyway, but must not pass it on.
    assert all(c.usage is None for c in chunks)


def test_stream_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (10, 2)
    assert last.usage.total_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_from_the_builtin_mock_matches_its_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="mock-chat", messages=MESSAGES)
    stream = client.chat.completions.create(
        model="mock-chat",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_embeddings_return_vectors(client: openai.OpenAI) -> None:
    r = client.embeddings.create(model="embed-test", input=["first", "second"])
    assert r.object == "list"
    assert [d.index for d in r.data] == [0, 1]
    for d in r.data:
        assert len(d.embedding) == 3
        assert all(isinstance(x, float) for x in d.embedding)
    assert r.usage.prompt_tokens == 4


def test_models_list_includes_the_configured_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-test", "mock-chat", "embed-test"} <= ids


def test_models_retrieve(client: openai.OpenAI) -> None:
    m = client.models.retrieve("gpt-test")
    assert m.id == "gpt-test"
    assert m.object == "model"


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"


def test_wrong_key_raises_authentication_error() -> None:
    with pytest.raises(openai.AuthenticationError) as e:
        make_client("sk-wrong-key").chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert e.value.status_code == 401


def test_unknown_extra_field_does_not_break_the_call(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        extra_body={"x_portcullis_unknown_field": {"nested": [1, 2, 3]}},
    )
    assert r.choices[0].message.content == "Hello world"
