// What the usage panel says of a window (src/usage.js) and the errors it explains (messages.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeWindow, formatAmount } from "../src/usage.js";

describe("describeWindow", () => {
  it("says what is left of a token window, and what was used", () => {
    const view = describeWindow("dailyInputTokens", { used: 6327, allowed: 20000 });
    assert.equal(view.text, "13,673 left of 20,000 tokens");
    assert.equal(view.used, "6,327 used");
    assert.equal(view.reached, false);
  });

  it("says what is left in dollars, cents and fractions of a cent", () => {
    const view = describeWindow("dailyUsd", { used: 0.0123, allowed: 1 });
    assert.equal(view.text, "$0.9877 left of $1.00");
    assert.equal(view.used, "$0.0123 used");
    assert.equal(formatAmount("monthlyUsd", 25), "$25.00");
    assert.equal(formatAmount("dailyUsd", 0.0000421), "$0.000042");
    assert.equal(formatAmount("dailyUsd", 0), "$0.00");
  });

  it("shows a used-up window as reached, and never less than nothing left", () => {
    const view = describeWindow("dailyOutputTokens", { used: 80, allowed: 80 });
    assert.equal(view.text, "0 left of 80 tokens");
    assert.equal(view.reached, true);
    assert.equal(describeWindow("dailyOutputTokens", { used: 90, allowed: 80 }).text,
      "0 left of 80 tokens");
  });

  it("shows dashes before the gateway said anything", () => {
    const view = describeWindow("monthlyInputTokens", undefined);
    assert.equal(view.text, "— left of — tokens");
    assert.equal(view.reached, false);
  });

  it("keeps a refusal's limit reached until the figures show room", () => {
    assert.equal(describeWindow("dailyInputTokens",
      { used: 1990, allowed: 2000, exhausted: true }).reached, true);
  });
});
