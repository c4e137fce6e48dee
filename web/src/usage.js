// The token-usage panel: one meter per window, fed by the `limits` of `done` and `error` events.

export const WINDOWS = [
  ["dailyInputTokens", "Input · last 24 hours"],
  ["dailyOutputTokens", "Output · last 24 hours"],
  ["monthlyInputTokens", "Input · this month"],
  ["monthlyOutputTokens", "Output · this month"],
];
export const WINDOW_PHRASE = {
  dailyInputTokens: "daily input tokens",
  dailyOutputTokens: "daily output tokens",
  monthlyInputTokens: "monthly input tokens",
  monthlyOutputTokens: "monthly output tokens",
};

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export class UsagePanel {
  constructor(list, updated) {
    this.list = list;
    this.updated = updated;
    this.tier = null;
    this.usage = {};
  }

  reset(tier) {
    this.tier = tier;
    this.usage = {};
    this.render(false);
  }

  /** Merge `limits` (window -> {used, allowed}) from a `done` or `error` event. */
  update(limits) {
    if (!limits || typeof limits !== "object") return;
    for (const [key, value] of Object.entries(limits)) {
      if (value && typeof value === "object") this.usage[key] = { ...this.usage[key], ...value };
    }
    this.render(true);
  }

  markExhausted(window, resetsAt) {
    const current = this.usage[window] || { used: null, allowed: this.tier?.[window] ?? null };
    this.usage[window] = { ...current, exhausted: true, resetsAt };
    this.render(true);
  }

  render(fresh) {
    const rows = [];
    for (const [key, label] of WINDOWS) {
      const entry = this.usage[key] || { used: null, allowed: this.tier?.[key] ?? null };
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.dataset.window = key;
      const meter = document.createElement("div");
      meter.className = "meter";
      const fill = document.createElement("span");
      const share =
        entry.used != null && entry.allowed ? Math.min(1, entry.used / entry.allowed) : 0;
      // A width through the CSSOM, not a style attribute: the hosting's CSP forbids inline styles.
      fill.style.setProperty("width", `${(share * 100).toFixed(1)}%`);
      meter.classList.toggle("high", share >= 0.8);
      meter.classList.toggle("full", share >= 1 || Boolean(entry.exhausted));
      meter.setAttribute("role", "meter");
      meter.setAttribute("aria-label", label);
      meter.setAttribute("aria-valuemin", "0");
      meter.setAttribute("aria-valuemax", String(entry.allowed ?? 0));
      meter.setAttribute("aria-valuenow", String(Math.min(entry.used ?? 0, entry.allowed ?? 0)));
      meter.append(fill);
      const figures = document.createElement("div");
      figures.className = "usage-figures";
      const used = entry.used == null ? "—" : entry.used.toLocaleString();
      const allowed = entry.allowed == null ? "—" : entry.allowed.toLocaleString();
      figures.textContent = `${used} of ${allowed} tokens`;
      dd.append(meter, figures);
      if (entry.exhausted) {
        const reset = document.createElement("div");
        reset.className = "usage-reset";
        reset.textContent = entry.resetsAt
          ? `Limit reached · available again from ${formatTime(entry.resetsAt)}`
          : "Limit reached";
        dd.append(reset);
      }
      rows.push(dt, dd);
    }
    this.list.replaceChildren(...rows);
    this.updated.textContent = fresh
      ? `Updated ${new Date().toLocaleTimeString()}`
      : "Figures appear after your first answer.";
  }
}
