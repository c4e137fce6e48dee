// One message on screen: the user's text, or an answer with its markdown, status and problem.
import { renderMarkdown } from "./markdown.js";
import { formatAmount, formatTime, isMoney, WINDOW_PHRASE } from "./usage.js";

export function messageItem(message) {
  const li = document.createElement("li");
  li.className = `message ${message.role}`;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = message.role === "user" ? "You" : "Assistant";
  const body = document.createElement("div");
  body.className = "text";
  li.append(who, body);
  // Not enumerable, so the stored conversation holds data only.
  Object.defineProperty(message, "view", { enumerable: false, value: li, writable: true });
  if (message.role === "user") {
    body.textContent = message.text;
  } else {
    renderAnswer(message);
  }
  return li;
}

export function renderAnswer(message) {
  const li = message.view;
  if (!li) return;
  const body = li.querySelector(".text");
  renderMarkdown(body, message.text || "");
  body.hidden = !message.text && message.status !== "streaming";
  li.classList.toggle("streaming", message.status === "streaming");
  li.dataset.status = message.status;
  if (message.status === "streaming") li.setAttribute("aria-busy", "true");
  else li.removeAttribute("aria-busy");
  for (const old of li.querySelectorAll(".meta, .problem, .note")) old.remove();
  if (message.meta) {
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = message.meta;
    li.append(meta);
  }
  if (message.cut && message.status === "done") {
    // The model was still writing: the tier's per-turn maximum cut it (stopReason max_tokens).
    const note = document.createElement("div");
    note.className = "note cut";
    note.textContent = CUT_NOTE;
    li.append(note);
  }
  if (message.status === "stopped" || message.status === "interrupted") {
    const note = document.createElement("div");
    note.className = `note ${message.status}`;
    note.textContent =
      message.status === "stopped"
        ? "Stopped."
        : "Interrupted: the connection dropped before this answer finished.";
    li.append(note);
  }
  if (message.error) {
    const problem = document.createElement("div");
    problem.className = "problem";
    problem.setAttribute("role", "alert");
    problem.dataset.code = message.error.code;
    problem.textContent = message.error.text;
    if (message.error.newChat) {
      // A refusal that a conversation with less history avoids: offer one where the user reads it.
      const button = document.createElement("button");
      button.type = "button";
      button.className = "inline-action";
      button.dataset.action = "new-chat";
      button.textContent = "New chat";
      problem.append(" ", button);
    }
    li.append(problem);
  }
}

export const CUT_NOTE = "Cut at your tier's maximum answer length.";

/** Whether the answer to `error` is to start a new chat (so the error offers one). */
export const offersNewChat = (error) => error.code === "turn_too_large";

export function describeError(error, tier) {
  const tierName = tier?.name ? `the ${tier.name} tier` : "your tier";
  switch (error.code) {
    case "turn_too_large": {
      // The window has room, only not for this turn: never "come back later".
      if (error.message) return error.message;
      const window = error.window || "";
      const phrase = WINDOW_PHRASE[window] || "allowance";
      return (
        `This message needs ${formatAmount(window, error.needed)} but ` +
        `${formatAmount(window, error.remaining)} ${isMoney(window) ? "is" : "are"} left of ` +
        `your ${phrase}. A shorter message or a new chat will fit.`
      );
    }
    case "limit_exceeded": {
      const window = WINDOW_PHRASE[error.window] || "tokens";
      const when = error.resetsAt ? ` You can chat again from ${formatTime(error.resetsAt)}.` : "";
      return `Limit reached: you have used all your ${window} on ${tierName}.${when}`;
    }
    case "model_not_allowed":
      return `That model is not available on ${tierName}. ${error.message || ""}`.trim();
    case "unauthorized":
      return "The gateway refused this request for your account. Sign out and in again.";
    default: {
      const again = error.retryable ? " You can try again." : "";
      const request = error.requestId ? ` (request ${error.requestId})` : "";
      return `${error.message || "Something went wrong."}${again}${request}`;
    }
  }
}
