// One conversation on screen: messages, the running turn, Stop, and the chat list.
//
// A turn is published to the user's inbound channel; its events come back on the outbound
// channel with seq 0, 1, 2... and end with exactly one `done` or `error`. A turn ended here
// before its terminal event arrived (Stop, a dropped connection, a timeout) is "settling": its
// later deltas are ignored, but its terminal event still updates the usage panel.
//
// The page also asks the gateway for the user's tier, models and usage (`{"action": "usage"}`)
// whenever it connects; the one `usage` event that answers fills the panel and the model picker.
import { planTurn, remainingInput } from "./history.js";
import { formatDollars } from "./usage.js";
import { CUT_NOTE, describeError, messageItem, offersNewChat, renderAnswer } from "./messages.js";

const $ = (id) => document.getElementById(id);

const TURN_TIMEOUT_MS = 90_000;
const USAGE_TIMEOUT_MS = 10_000;
const ROOM_AGAIN = "Your usage limits have room again.";
const SETTLING_MS = 5 * 60_000;
function uuid() {
  // crypto.randomUUID exists only in secure contexts; the page may be served over plain http
  // from another host (python -m local --host 0.0.0.0), where getRandomValues still works.
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The usage of a `done` when the gateway counted the conversation it answered, so the next turn
 * can send it as counted (history.js); null otherwise. A prepared answer was not counted, and an
 * answer without text is not sent again.
 */
function counted(done, answer) {
  const { inputTokens, outputTokens } = done.usage || {};
  // A stopped turn was charged an estimate, not a count.
  if (done.cached || done.stopReason === "stopped" || !answer.text.trim()) return null;
  if (!Number.isFinite(inputTokens) || !Number.isFinite(outputTokens)) return null;
  return { inputTokens, outputTokens };
}

export class ChatView {
  /**
   * @param {object} o
   * @param {import("./store.js").ChatStore} o.store
   * @param {import("./usage.js").UsagePanel} o.usage
   * @param {(event: object) => Promise} o.publish  publish to the user's inbound channel
   * @param {(usage: object) => void} o.onTier  a `usage` event arrived: tier, models, default
   */
  constructor({ store, usage, publish, onTier }) {
    this.store = store;
    this.usage = usage;
    this.tier = null;
    this.publish = publish;
    this.onTier = onTier;
    this.chat = null;
    this.turn = null;
    this.settling = new Map(); // turnId -> expiry time
    this.usageAsked = new Set(); // turn ids of usage requests not answered yet
  }

  get busy() {
    return Boolean(this.turn);
  }

  detach() {
    this.detached = true; // the panel and the list now belong to whoever signs in next
    this.persist();
    $("messages").replaceChildren();
    $("chat-list").replaceChildren();
  }

  persist() {
    if (this.chat) this.store.save(this.chat);
  }

  // --- conversations --------------------------------------------------------------------------

  openLatest() {
    const latest = this.store.list()[0];
    if (latest) this.open(latest.id);
    else this.newChat();
  }

  newChat() {
    if (this.turn) this.stop();
    this.chat = this.store.create(`c-${uuid()}`);
    this.show();
    $("prompt").focus();
  }

  open(id) {
    if (this.turn) this.stop();
    const chat = this.store.get(id);
    if (!chat) return;
    this.chat = chat;
    this.show();
  }

  show() {
    const list = $("messages");
    list.replaceChildren();
    for (const message of this.chat.messages) {
      // A turn still streaming when the page was closed never finished.
      if (message.status === "streaming") message.status = "interrupted";
      list.append(messageItem(message));
    }
    $("empty").hidden = this.chat.messages.length > 0;
    this.renderList();
    list.scrollTop = list.scrollHeight;
  }

  renderList() {
    const items = this.store.list().filter((c) => c.messages.length || c === this.chat).map((c) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.chat = c.id;
      const title = document.createElement("span");
      title.className = "chat-title";
      title.textContent = c.title || "New chat";
      const when = document.createElement("span");
      when.className = "chat-when";
      when.textContent = new Date(c.updated).toLocaleString(undefined, {
        dateStyle: "short",
        timeStyle: "short",
      });
      button.append(title, when);
      if (c === this.chat) button.setAttribute("aria-current", "true");
      li.append(button);
      return li;
    });
    $("chat-list").replaceChildren(...items);
  }

  // --- messages on screen ---------------------------------------------------------------------

  scrollToEnd(force = false) {
    const list = $("messages");
    const near = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
    if (force || near) list.scrollTop = list.scrollHeight;
  }

  announce(text) {
    const el = $("announcer");
    el.textContent = "";
    // A fresh text node on the next frame, so the same words are announced again.
    requestAnimationFrame(() => {
      el.textContent = text;
    });
  }

  // --- turns ----------------------------------------------------------------------------------

  /** Ask the gateway for the tier, its models and the usage so far (no model call). */
  async requestUsage() {
    const turnId = `u-${uuid()}`;
    this.usageAsked.add(turnId);
    // A gateway that does not answer usage requests still shows figures after the first answer.
    setTimeout(() => {
      if (this.usageAsked.delete(turnId) && !this.detached) this.usage.unavailable();
    }, USAGE_TIMEOUT_MS);
    try {
      await this.publish({ action: "usage", turnId });
    } catch {
      this.usageAsked.delete(turnId);
      this.usage.unavailable();
    }
  }

  onUsage(event) {
    // Every tab of the user hears every answer on the user's channel: take only our own, so
    // another tab's figures, read before this page's turns, never overwrite newer ones.
    if (!this.usageAsked.delete(event.turnId)) return;
    this.tier = { name: event.tier, models: event.models, defaultModel: event.defaultModel };
    this.usage.update(event.limits, { answered: true });
    this.onTier?.(event);
  }

  async send(text, modelId) {
    const turnId = `t-${uuid()}`;
    const chat = this.chat;
    // Only as much history as the allowance left can carry, newest turns first (history.js).
    const plan = planTurn({
      messages: chat.messages,
      text,
      sentFrom: chat.sentFrom ?? 0,
      lastDone: chat.lastDone ?? null,
      remaining: remainingInput(this.usage.limits),
    });
    chat.sentFrom = plan.sentFrom;
    chat.lastDone = null; // until this turn's `done`
    const user = { role: "user", text };
    const answer = { role: "assistant", text: "", status: "streaming", turnId };
    this.chat.messages.push(user, answer);
    $("empty").hidden = true;
    $("messages").append(messageItem(user), messageItem(answer));
    this.scrollToEnd(true);
    this.store.save(this.chat);
    this.renderList();

    const turn = { id: turnId, chat, answer, next: 0, early: new Map(), done: false };
    this.turn = turn;
    this.setBusy(true);
    this.announce("The assistant is answering.");
    turn.timer = setTimeout(
      () => this.fail(turn, { code: "timeout", retryable: true,
        message: "No answer arrived from the gateway in time." }),
      TURN_TIMEOUT_MS,
    );
    try {
      await this.publish({
        conversationId: this.chat.id,
        turnId,
        modelId,
        messages: plan.messages,
      });
    } catch (err) {
      this.fail(turn, { code: "publish_failed", retryable: true,
        message: `The message was not sent: ${err.message}.` });
    }
  }

  /** Stop the running turn: it ends on screen now, and the gateway is asked to stop it. */
  stop() {
    const turn = this.turn;
    if (!turn) return;
    this.end(turn, "stopped");
    this.announce("Stopped.");
    this.publish({ action: "stop", turnId: turn.id }).catch(() => {
      /* the turn still ends on the gateway's side, at its per-turn maximum */
    });
  }

  /** The connection dropped: the running turn's remaining events may never arrive. */
  interrupt() {
    const turn = this.turn;
    if (!turn) return;
    this.end(turn, "interrupted");
    this.announce("The connection dropped; the answer was cut off.");
  }

  onEvent(event) {
    if (!event || typeof event !== "object") return;
    if (event.type === "usage") {
      this.onUsage(event);
      return;
    }
    if (this.usageAsked.has(event.turnId)) {
      // The gateway could not answer the usage request: the figures come with the next answer.
      this.usageAsked.delete(event.turnId);
      this.usage.update(event.limits);
      this.usage.unavailable();
      return;
    }
    const terminal = event.type === "done" || event.type === "error";
    if (this.settling.has(event.turnId)) {
      if (terminal) {
        this.usage.update(event.limits, { answered: event.type === "done" });
        if (event.type === "done") this.settling.delete(event.turnId);
      }
      return;
    }
    const turn = this.turn;
    if (!turn || event.turnId !== turn.id || turn.done) return;
    // Events of a turn carry seq 0, 1, 2...; apply them in that order whatever order they arrive,
    // and each once (a re-subscription may deliver one twice).
    if (!Number.isInteger(event.seq) || event.seq < turn.next) return;
    turn.early.set(event.seq, event);
    while (turn.early.has(turn.next) && !turn.done) {
      const next = turn.early.get(turn.next);
      turn.early.delete(turn.next);
      turn.next += 1;
      this.apply(turn, next);
    }
  }

  apply(turn, event) {
    const answer = turn.answer;
    if (event.type === "delta") {
      answer.text += event.text || "";
      if (!turn.frame) {
        turn.frame = requestAnimationFrame(() => {
          turn.frame = null;
          if (!turn.done) renderAnswer(answer);
          this.scrollToEnd();
        });
      }
    } else if (event.type === "done") {
      const provider = { local: "local model", openai: "OpenAI-compatible endpoint" }[event.provider];
      answer.meta = [
        `${event.modelId || "model"}${provider ? ` (${provider})` : ""}`,
        `${event.usage?.inputTokens ?? "?"} in / ${event.usage?.outputTokens ?? "?"} out tokens`,
        Number.isFinite(event.costUsd) ? formatDollars(event.costUsd) : null,
        event.cached ? "prepared answer" : null,
        event.stopReason === "stopped" ? "stopped" : null,
      ].filter(Boolean).join(" · ");
      answer.cut = event.stopReason === "max_tokens";
      turn.chat.lastDone = counted(event, answer);
      const roomAgain = this.usage.update(event.limits, { answered: true });
      this.finish(turn, "done");
      const words = answer.text.trim().split(/\s+/).filter(Boolean).length;
      this.announce(
        [
          `Answer complete, ${words} words.`,
          answer.cut ? CUT_NOTE : null,
          roomAgain ? ROOM_AGAIN : null,
        ].filter(Boolean).join(" "),
      );
    } else if (event.type === "error") {
      this.fail(turn, event);
    }
  }

  fail(turn, error) {
    if (turn.done) return;
    turn.answer.error = {
      code: error.code,
      text: describeError(error, this.tier),
      newChat: offersNewChat(error),
    };
    this.usage.update(error.limits);
    if (error.code === "limit_exceeded" && error.window) {
      this.usage.markExhausted(error.window, error.resetsAt);
    }
    const endedHere = error.type !== "error"; // a timeout or a failed publish: no terminal yet
    if (endedHere) this.settle(turn.id);
    this.finish(turn, "error");
    this.announce(turn.answer.error.text);
  }

  /** End `turn` on screen before its terminal event arrived. */
  end(turn, status) {
    if (turn.done) return;
    this.settle(turn.id);
    this.finish(turn, status);
  }

  settle(turnId) {
    const now = Date.now();
    for (const [id, expiry] of this.settling) if (expiry < now) this.settling.delete(id);
    this.settling.set(turnId, now + SETTLING_MS);
  }

  finish(turn, status) {
    turn.done = true;
    clearTimeout(turn.timer);
    if (turn.frame) cancelAnimationFrame(turn.frame);
    turn.answer.status = status;
    renderAnswer(turn.answer);
    this.scrollToEnd();
    if (this.turn === turn) this.turn = null;
    this.setBusy(false);
    this.persist();
    this.renderList();
  }

  setBusy(busy) {
    $("send").hidden = busy;
    $("stop").hidden = !busy;
    $("prompt").setAttribute("aria-busy", String(busy));
  }
}
