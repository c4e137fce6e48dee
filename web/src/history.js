// The conversation sent with each turn: the gateway keeps no history, so the client sends it.

// The gateway's default per-event limits (docs/wire.md): the history sent with a turn is cut,
// oldest turns first, to fit them.
export const MAX_MESSAGES = 40;
export const MAX_CHARS = 16_000;

/** Earlier turns to send with a new user message: whole pairs, newest kept, within the limits. */
export function historyFor(messages) {
  const pairs = [];
  for (let i = 0; i + 1 < messages.length; i++) {
    const [user, answer] = [messages[i], messages[i + 1]];
    if (user.role === "user" && answer.role === "assistant" && answer.text?.trim()) {
      pairs.push([user, answer]);
      i++;
    }
  }
  const kept = [];
  let chars = messages.at(-1)?.text.length || 0;
  for (const [user, answer] of pairs.reverse()) {
    chars += user.text.length + answer.text.length;
    if (kept.length + 3 > MAX_MESSAGES || chars > MAX_CHARS) break;
    kept.unshift(user, answer);
  }
  return kept.map((m) => ({ role: m.role, content: [{ text: m.text }] }));
}
