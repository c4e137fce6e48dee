// The history sent with a turn (src/history.js): trimmed, newest turns first, to what the
// remaining input allowance can carry, by the rule docs/web-ui.md states.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cost, planTurn, remainingInput, turnsFrom } from "../src/history.js";

const texts = (plan) => plan.messages.map((m) => m.content[0].text);

function conversation(turns, size = 100) {
  const messages = [];
  for (let i = 0; i < turns; i++) {
    messages.push({ role: "user", text: `q${i}` }, { role: "assistant", text: `${i}`.padEnd(size, "a") });
  }
  return messages;
}

describe("cost and remainingInput", () => {
  it("costs a message its UTF-8 bytes plus 16", () => {
    assert.equal(cost("abc"), 19);
    assert.equal(cost("é"), 18); // two bytes
    assert.equal(cost("日本"), 22); // three bytes each
    assert.equal(cost("😀"), 20); // four bytes, one code point, two UTF-16 units
  });

  it("takes the tighter of the daily and monthly input windows", () => {
    const limits = {
      dailyInputTokens: { used: 1500, allowed: 2000 },
      monthlyInputTokens: { used: 19_800, allowed: 20_000 },
      dailyOutputTokens: { used: 0, allowed: 10 },
    };
    assert.equal(remainingInput(limits), 200);
    assert.equal(remainingInput({ dailyInputTokens: { used: 5, allowed: 50 } }), 45);
  });

  it("knows nothing before any limits arrived", () => {
    assert.equal(remainingInput(null), null);
    assert.equal(remainingInput({ dailyOutputTokens: { used: 1, allowed: 2 } }), null);
  });
});

describe("turnsFrom", () => {
  it("pairs each user message with the answer that has text, skipping failed turns", () => {
    const messages = [
      { role: "user", text: "one" },
      { role: "assistant", text: "answer one" },
      { role: "user", text: "two" },
      { role: "assistant", text: "", status: "error" },
      { role: "user", text: "three" },
      { role: "assistant", text: "answer three" },
    ];
    assert.deepEqual(turnsFrom(messages), [[0, 1], [4, 5]]);
    assert.deepEqual(turnsFrom(messages, 2), [[4, 5]]);
  });
});

describe("planTurn", () => {
  it("sends everything when the remaining allowance is unknown", () => {
    const messages = conversation(3);
    const plan = planTurn({ messages, text: "now", remaining: null });
    assert.equal(plan.sentFrom, 0);
    assert.deepEqual(texts(plan).at(-1), "now");
    assert.equal(plan.messages.length, 7);
  });

  it("sends the conversation as counted when last turn's count fits", () => {
    const messages = conversation(3, 1000);
    const lastDone = { inputTokens: 300, outputTokens: 250 };
    // The uncounted bound of the history (3 × ~1,020 bytes) would not fit; the count does.
    const remaining = 300 + 250 + 32 + cost("now");
    const plan = planTurn({ messages, text: "now", sentFrom: 0, lastDone, remaining });
    assert.equal(plan.sentFrom, 0);
    assert.equal(plan.messages.length, 7);
    assert.equal(plan.reserve, remaining);
  });

  it("keeps the start of what was sent last time, not the start of the conversation", () => {
    const messages = conversation(4);
    const lastDone = { inputTokens: 100, outputTokens: 50 };
    const plan = planTurn({ messages, text: "now", sentFrom: 4, lastDone, remaining: 10_000 });
    assert.equal(plan.sentFrom, 4);
    assert.deepEqual(texts(plan), ["q2", messages[5].text, "q3", messages[7].text, "now"]);
  });

  it("otherwise sends the longest suffix of whole turns whose uncounted cost fits", () => {
    const messages = conversation(5, 100);
    const turn = cost("q0") + cost(messages[1].text); // every turn costs the same here
    const remaining = 32 + cost("now") + 2 * turn + turn - 1; // room for two turns, not three
    const plan = planTurn({ messages, text: "now", remaining });
    assert.equal(plan.sentFrom, 6);
    assert.deepEqual(texts(plan), ["q3", messages[7].text, "q4", messages[9].text, "now"]);
    assert.equal(plan.reserve, 32 + cost("now") + 2 * turn);
    assert.ok(plan.reserve <= remaining);
  });

  it("falls back to the suffix rule when the counted conversation no longer fits", () => {
    const messages = conversation(3, 100);
    const lastDone = { inputTokens: 5000, outputTokens: 100 };
    const turn = cost("q0") + cost(messages[1].text);
    const plan = planTurn({
      messages,
      text: "now",
      sentFrom: 0,
      lastDone,
      remaining: 32 + cost("now") + turn,
    });
    assert.equal(plan.sentFrom, 4);
    assert.deepEqual(texts(plan), ["q2", messages[5].text, "now"]);
  });

  it("sends the new message alone when nothing else fits, even if it does not either", () => {
    const messages = conversation(2);
    const plan = planTurn({ messages, text: "x".repeat(500), remaining: 100 });
    assert.equal(plan.sentFrom, 4);
    assert.deepEqual(texts(plan), ["x".repeat(500)]);
  });

  it("never sends a failed turn, and starts the suffix at a user message", () => {
    const messages = [
      { role: "user", text: "one" },
      { role: "assistant", text: "answer one" },
      { role: "user", text: "two" },
      { role: "assistant", text: "", status: "error" },
    ];
    const plan = planTurn({ messages, text: "three", remaining: 10_000 });
    assert.deepEqual(texts(plan), ["one", "answer one", "three"]);
    assert.deepEqual(plan.messages.map((m) => m.role), ["user", "assistant", "user"]);
  });

  it("keeps the text exactly as sent and streamed, whitespace and all", () => {
    const messages = [
      { role: "user", text: "  spaced  " },
      { role: "assistant", text: "\nanswer with a trailing newline\n" },
    ];
    const plan = planTurn({ messages, text: "next", remaining: null });
    assert.deepEqual(texts(plan), ["  spaced  ", "\nanswer with a trailing newline\n", "next"]);
  });

  it("still fits the gateway's message and character limits per event", () => {
    const messages = conversation(30, 1000);
    const plan = planTurn({ messages, text: "now", remaining: null });
    assert.ok(plan.messages.length <= 40);
    assert.ok(texts(plan).join("").length <= 16_000);
    assert.equal(texts(plan).at(-3), "q29");
    assert.equal(plan.messages[0].role, "user");
  });
});
