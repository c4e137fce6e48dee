// Conversations kept in the browser (src/store.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatStore, MAX_BYTES, MAX_CHATS } from "../src/store.js";

class MemoryStorage {
  constructor(quota = Infinity) {
    this.items = new Map();
    this.quota = quota;
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    if (value.length > this.quota) throw new Error("QuotaExceededError");
    this.items.set(key, value);
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

function chatWith(store, id, text, size = 0) {
  const chat = store.create(id);
  chat.messages.push(
    { role: "user", text },
    { role: "assistant", text: "x".repeat(size), status: "done" },
  );
  store.save(chat);
  return chat;
}

describe("ChatStore", () => {
  it("keeps conversations per user across a reload, newest first", () => {
    const storage = new MemoryStorage();
    const alice = new ChatStore("pool", "alice", storage);
    chatWith(alice, "c-1", "first question");
    chatWith(alice, "c-2", "second question");
    new ChatStore("pool", "bob", storage).save(null);

    const again = new ChatStore("pool", "alice", storage);
    assert.deepEqual(again.list().map((c) => c.title), ["second question", "first question"]);
    assert.equal(new ChatStore("pool", "bob", storage).list().length, 0);
  });

  it("does not keep empty conversations", () => {
    const storage = new MemoryStorage();
    const store = new ChatStore("pool", "u", storage);
    store.save(store.create("c-empty"));
    assert.equal(new ChatStore("pool", "u", storage).list().length, 0);
  });

  it("keeps at most MAX_CHATS conversations, dropping the least recently used", () => {
    const storage = new MemoryStorage();
    const store = new ChatStore("pool", "u", storage);
    for (let i = 0; i < MAX_CHATS + 5; i++) chatWith(store, `c-${i}`, `question ${i}`);
    const kept = new ChatStore("pool", "u", storage).list();
    assert.equal(kept.length, MAX_CHATS);
    assert.equal(kept[0].title, `question ${MAX_CHATS + 4}`);
    assert.ok(!kept.some((c) => c.title === "question 0"));
  });

  it("stays within MAX_BYTES and the browser's quota", () => {
    const storage = new MemoryStorage(150_000);
    const store = new ChatStore("pool", "u", storage);
    for (let i = 0; i < 10; i++) chatWith(store, `c-${i}`, `q${i}`, 40_000);
    const text = storage.getItem(store.key);
    assert.ok(text.length <= Math.min(MAX_BYTES, 150_000), text.length);
    assert.equal(new ChatStore("pool", "u", storage).list()[0].title, "q9");
  });

  it("keeps what the gateway counted pointing at the same messages when old ones go", () => {
    const storage = new MemoryStorage(3_000);
    const store = new ChatStore("pool", "u", storage);
    const chat = store.create("c-big");
    for (let i = 0; i < 4; i++) {
      chat.messages.push({ role: "user", text: `q${i}` }, { role: "assistant", text: "a".repeat(900) });
    }
    chat.sentFrom = 4;
    chat.lastDone = { inputTokens: 500, outputTokens: 200 };
    store.save(chat);
    const [kept] = new ChatStore("pool", "u", storage).list();
    assert.ok(kept.messages.length < 8);
    const dropped = 8 - kept.messages.length;
    assert.equal(kept.sentFrom, 4 - dropped);
    assert.equal(kept.messages[kept.sentFrom].text, "q2");
    assert.deepEqual(kept.lastDone, { inputTokens: 500, outputTokens: 200 });
  });

  it("forgets what the gateway counted once a message it covered is dropped", () => {
    const storage = new MemoryStorage(2_200);
    const store = new ChatStore("pool", "u", storage);
    const chat = store.create("c-big");
    for (let i = 0; i < 3; i++) {
      chat.messages.push({ role: "user", text: `q${i}` }, { role: "assistant", text: "a".repeat(900) });
    }
    chat.lastDone = { inputTokens: 500, outputTokens: 200 };
    store.save(chat);
    const [kept] = new ChatStore("pool", "u", storage).list();
    assert.equal(kept.messages[0].text, "q1");
    assert.equal(kept.sentFrom, 0);
    assert.equal(kept.lastDone, null);
  });

  it("starts afresh from an unreadable entry", () => {
    const storage = new MemoryStorage();
    storage.setItem("ai-gateway.chats.pool.u", "{not json");
    assert.deepEqual(new ChatStore("pool", "u", storage).list(), []);
  });
});
