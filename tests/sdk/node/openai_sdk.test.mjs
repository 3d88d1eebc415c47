// The official `openai` Node SDK against a running Portcullis gateway (node:test).
//
// How it finds the SDK: `import OpenAI from "openai"` is resolved by ESM, which looks for
// node_modules in the directories above the *importing file* and ignores NODE_PATH. So this file
// is not run from here: crates/server/tests/sdk.rs copies it into the install directory
// (.sdk/node, next to node_modules, made by scripts/install-sdks.sh) and runs the copy. A
// copy, not a symlink, because Node resolves from a symlink's target. By hand:
//
//   scripts/install-sdks.sh
//   cp tests/sdk/node/openai_sdk.test.mjs .sdk/node/
//   PORTCULLIS_BASE_URL=http://127.0.0.1:PORT/v1 PORTCULLIS_KEY=sk-... \
//       node --test .sdk/node/openai_sdk.test.mjs
//
// The gateway's config (see sdk.rs) serves `gpt-test` and `embed-test` from a mock OpenAI
// upstream that always answers "Hello world" (usage 10/2/12, streamed as "Hello", " world") and
// 3-dimensional embeddings, and `mock-chat` from the gateway's built-in mock provider
// (8 deterministic words, sent 2 per chunk).

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

const baseURL = process.env.PORTCULLIS_BASE_URL;
const apiKey = process.env.PORTCULLIS_KEY;
assert.ok(baseURL && apiKey, "PORTCULLIS_BASE_URL and PORTCULLIS_KEY must be set");

const messages = [{ role: "user", content: "Say hello" }];

// No retries: a failure should show the gateway's first answer, and fast.
const makeClient = (key = apiKey) =>
  new OpenAI({ baseURL, apiKey: key, maxRetries: 0, timeout: 30_000 });
const client = makeClient();

/** Every chunk of a stream, and the text its content deltas join to. */
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks
    .filter((c) => c.choices.length > 0)
    .map((c) => c.choices[0].delta.content ?? "")
    .join("");
  return { chunks, text };
}

test("chat returns content and usage", async () => {
  const r = await client.chat.completions.create({ model: "gpt-test", messages });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].message.content, "Hello world");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.deepEqual(
    [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
    [10, 2, 12],
  );
});

test("chat with the built-in mock provider", async () => {
  const r = await client.chat.completions.create({ model: "mock-chat", messages });
  assert.equal(r.choices[0].message.content.split(" ").length, 8);
  assert.equal(r.usage.completion_tokens, 8);
});

test("stream deltas join to the full text, and carry no usage unless asked", async () => {
  const stream = await client.chat.completions.create({ model: "gpt-test", messages, stream: true });
  const { chunks, text } = await collect(stream);
  assert.equal(text, "Hello world");
  assert.equal(chunks.filter((c) => c.choices.length > 0).at(-1).choices[0].finish_reason, "stop");
  // The gateway asks upstream for usage anyway, but must not pass it on.
  for (const c of chunks) assert.ok(c.usage == null, `unexpected usage in ${JSON.stringify(c)}`);
});

test("stream with include_usage ends with a usage chunk", async () => {
  const stream = await client.chat.completions.create({
    model: "gpt-test",
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { chunks, text } = await collect(stream);
  assert.equal(text, "Hello world");
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(
    [last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens],
    [10, 2, 12],
  );
  for (const c of chunks.slice(0, -1)) assert.ok(c.usage == null);
});

test("stream from the built-in mock matches its plain answer", async () => {
  const plain = await client.chat.completions.create({ model: "mock-chat", messages });
  const stream = await client.chat.completions.create({
    model: "mock-chat",
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { chunks, text } = await collect(stream);
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(chunks.at(-1).usage.completion_tokens, 8);
});

test("embeddings return vectors", async () => {
  const r = await client.embeddings.create({ model: "embed-test", input: ["first", "second"] });
  assert.equal(r.object, "list");
  assert.deepEqual(
    r.data.map((d) => d.index),
    [0, 1],
  );
  for (const d of r.data) {
    assert.equal(d.embedding.length, 3);
    assert.ok(d.embedding.every((x) => typeof x === "number"));
  }
  assert.equal(r.usage.prompt_tokens, 4);
});

test("models list includes the configured models", async () => {
  const ids = new Set();
  for await (const m of client.models.list()) ids.add(m.id);
  for (const id of ["gpt-test", "mock-chat", "embed-test"]) assert.ok(ids.has(id), `no ${id}`);
});

test("models retrieve", async () => {
  const m = await client.models.retrieve("gpt-test");
  assert.equal(m.id, "gpt-test");
  assert.equal(m.object, "model");
});

test("unknown model rejects with NotFoundError", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `got ${e}`);
      assert.equal(e.status, 404);
      assert.equal(e.code, "model_not_found");
      return true;
    },
  );
});

test("wrong key rejects with AuthenticationError", async () => {
  await assert.rejects(
    makeClient("sk-wrong-key").chat.completions.create({ model: "gpt-test", messages }),
    (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e}`);
      assert.equal(e.status, 401);
      return true;
    },
  );
});

test("an unknown extra field does not break the call", async () => {
  // The SDK sends parameters it does not know as they are.
  const r = await client.chat.completions.create({
    model: "gpt-test",
    messages,
    x_portcullis_unknown_field: { nested: [1, 2, 3] },
  });
  assert.equal(r.choices[0].message.content, "Hello world");
});
