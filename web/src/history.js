// The conversation sent with each turn: the gateway keeps no history, so the client sends it,
// trimmed (newest turns kept) to what the user's remaining input allowance can carry.
//
// The gateway reserves a turn's input before calling the model. Text it has never counted is
// reserved at one token per UTF-8 byte plus 16 per message and 32 per request; a conversation it
// counted last turn (it recognises it by a hash of its messages) is reserved at the model's own
// count of last turn's input and answer. So the client works out what each choice will reserve
// and sends the most history that fits, instead of sending everything and being refused
// (docs/web-ui.md, "History and the allowance", states the rule a test of the gateway mimics).

// The gateway's default per-event limits (docs/wire.md): the history is cut to fit them too.
export const MAX_MESSAGES = 40;
export const MAX_CHARS = 16_000;
export const PER_MESSAGE = 16;
export const PER_REQUEST = 32;

const INPUT_WINDOWS = ["dailyInputTokens", "monthlyInputTokens"];
const encoder = new TextEncoder();

/** What the gateway reserves for a message it has not counted before. */
export function cost(text) {
  return encoder.encode(text).length + PER_MESSAGE;
}

/** The input tokens left in the tightest input window of `limits`, or null when unknown. */
export function remainingInput(limits) {
  let remaining = null;
  for (const key of INPUT_WINDOWS) {
    const entry = limits?.[key];
    if (!Number.isFinite(entry?.used) || !Number.isFinite(entry?.allowed)) continue;
    const left = entry.allowed - entry.used;
    remaining = remaining == null ? left : Math.min(remaining, left);
  }
  return remaining;
}

/**
 * Whole turns of `messages` from index `from` on: [userIndex, answerIndex] pairs of a user
 * message and the answer that followed it, where the answer has text (a failed turn has none,
 * and the gateway refuses a blank message).
 */
export function turnsFrom(messages, from = 0) {
  const turns = [];
  for (let i = Math.max(0, from); i + 1 < messages.length; i++) {
    const [user, answer] = [messages[i], messages[i + 1]];
    if (user.role === "user" && answer.role === "assistant" && answer.text?.trim()) {
      turns.push([i, i + 1]);
      i++;
    }
  }
  return turns;
}

function withinEventLimits(turns, messages, text) {
  let chars = text.length;
  for (const [u, a] of turns) chars += messages[u].text.length + messages[a].text.length;
  return turns.length * 2 + 1 <= MAX_MESSAGES && chars <= MAX_CHARS;
}

/**
 * What to send with a new user message `text` in a conversation whose earlier messages are
 * `messages` (as kept: user text as sent, answers exactly as streamed).
 *
 * @param {object} o
 * @param {object[]} o.messages  the conversation so far ({role, text})
 * @param {string} o.text  the new user message
 * @param {number} o.sentFrom  where the history sent with the last turn started
 * @param {{inputTokens: number, outputTokens: number}|null} o.lastDone  the usage of the last
 *   turn, when it ended with `done` (so the gateway counted what it sent and its answer)
 * @param {number|null} o.remaining  remainingInput() of the latest known limits
 * @returns {{sentFrom: number, messages: object[], reserve: number|null}} the new `sentFrom`
 *   (an index into `messages`; `messages.length` when only the new message goes), the wire
 *   messages, and what the client expects the gateway to reserve for them
 */
export function planTurn({ messages, text, sentFrom = 0, lastDone = null, remaining = null }) {
  const wire = (turns) => [
    ...turns.flatMap(([u, a]) => [messages[u], messages[a]]).map((m) => ({
      role: m.role,
      content: [{ text: m.text }],
    })),
    { role: "user", content: [{ text }] },
  ];
  const plan = (turns, reserve) => ({
    sentFrom: turns.length ? turns[0][0] : messages.length,
    messages: wire(turns),
    reserve,
  });

  // 1. The conversation the gateway counted last turn, plus its answer and the new message.
  if (lastDone) {
    const turns = turnsFrom(messages, sentFrom);
    const counted =
      lastDone.inputTokens + lastDone.outputTokens + PER_REQUEST + cost(text);
    if (
      Number.isFinite(counted) &&
      (remaining == null || counted <= remaining) &&
      withinEventLimits(turns, messages, text)
    ) {
      return { sentFrom, messages: wire(turns), reserve: counted };
    }
  }

  // 2. Otherwise the longest suffix of whole turns whose uncounted cost fits (newest first).
  const all = turnsFrom(messages, 0);
  let reserve = PER_REQUEST + cost(text);
  let kept = 0;
  for (let k = all.length - 1; k >= 0; k--) {
    const [u, a] = all[k];
    const more = cost(messages[u].text) + cost(messages[a].text);
    if (remaining != null && reserve + more > remaining) break;
    if (!withinEventLimits(all.slice(k), messages, text)) break;
    reserve += more;
    kept++;
  }
  // Even the new message alone may not fit: it goes alone and the gateway says how much is left.
  return plan(all.slice(all.length - kept), reserve);
}
