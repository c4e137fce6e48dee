// Conversations kept in the browser (src/store.js) and the history sent with a turn (src/chat.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { historyFor } from "../src/history.js";
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

  it("starts afresh from an unreadable entry", () => {
    const storage = new MemoryStorage();
    storage.setItem("ai-gateway.chats.pool.u", "{not json");
    assert.deepEqual(new ChatStore("pool", "u", storage).list(), []);
  });
});

describe("historyFor", () => {
  it("sends whole answered turns and skips turns without an answer", () => {
    const history = historyFor([
      { role: "user", text: "one" },
      { role: "assistant", text: "answer one" },
      { role: "user", text: "two" },
      { role: "assistant", text: "", status: "error" },
      { role: "user", text: "three" },
    ]);
    assert.deepEqual(history, [
      { role: "user", content: [{ text: "one" }] },
      { role: "assistant", content: [{ text: "answer one" }] },
    ]);
  });

  it("drops the oldest turns to fit the gateway's message and character limits", () => {
    const messages = [];
    for (let i = 0; i < 30; i++) {
      messages.push({ role: "user", text: `q${i}` }, { role: "assistant", text: "a".repeat(1000) });
    }
    messages.push({ role: "user", text: "now" });
    const history = historyFor(messages);
    assert.ok(history.length + 1 <= 40);
    const chars = history.reduce((n, m) => n + m.content[0].text.length, 0) + 3;
    assert.ok(chars <= 16_000, chars);
    assert.equal(history.at(-2).content[0].text, "q29");
    assert.equal(history[0].role, "user");
  });
});
