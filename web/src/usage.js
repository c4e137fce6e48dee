// The usage panel: one meter per window, saying what is left of it. Fed by the gateway's `usage`
// answer (asked for on connect, so a reload shows the figures at once) and by the `limits` of
// every `done` and `error` event.

export const WINDOWS = [
  ["dailyInputTokens", "Input · last 24 hours"],
  ["dailyOutputTokens", "Output · last 24 hours"],
  ["monthlyInputTokens", "Input · this month"],
  ["monthlyOutputTokens", "Output · this month"],
  ["dailyUsd", "Spend · last 24 hours"],
  ["monthlyUsd", "Spend · this month"],
];
// Money windows exist only where the tier sets them; token windows always do.
const OPTIONAL = new Set(["dailyUsd", "monthlyUsd"]);

export const WINDOW_PHRASE = {
  dailyInputTokens: "daily input tokens",
  dailyOutputTokens: "daily output tokens",
  monthlyInputTokens: "monthly input tokens",
  monthlyOutputTokens: "monthly output tokens",
  dailyUsd: "daily budget",
  monthlyUsd: "monthly budget",
};

export const isMoney = (window) => window.endsWith("Usd");

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

const dollars = new Intl.NumberFormat(undefined, {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 2,
  maximumFractionDigits: 4,
});
// A turn on a small model costs a fraction of a cent: "$0.000042" rather than "$0.00".
const cents = new Intl.NumberFormat(undefined, {
  style: "currency",
  currency: "USD",
  maximumSignificantDigits: 2,
});

export function formatDollars(amount) {
  if (!Number.isFinite(amount)) return "—";
  return amount > 0 && amount < 0.01 ? cents.format(amount) : dollars.format(amount);
}

/** `amount` of `window`'s unit, for people: "1,960" tokens or "$0.9877". */
export function formatAmount(window, amount) {
  if (!Number.isFinite(amount)) return "—";
  return isMoney(window) ? formatDollars(amount) : Math.round(amount).toLocaleString();
}

/** What the panel says of one window: what is left, and what was used. */
export function describeWindow(window, entry) {
  const known = Number.isFinite(entry?.used) && Number.isFinite(entry?.allowed);
  const left = known ? Math.max(0, entry.allowed - entry.used) : null;
  const unit = isMoney(window) ? "" : " tokens";
  return {
    left,
    text: `${formatAmount(window, left)} left of ${formatAmount(window, entry?.allowed)}${unit}`,
    used: known ? `${formatAmount(window, entry.used)} used` : "",
    share: known && entry.allowed > 0 ? Math.min(1, entry.used / entry.allowed) : known ? 1 : 0,
    reached: Boolean(entry?.exhausted) || (known && left <= 0),
  };
}

export class UsagePanel {
  constructor(list, updated) {
    this.list = list;
    this.updated = updated;
    this.usage = {};
    this.fresh = false;
  }

  reset() {
    this.usage = {};
    this.fresh = false;
    this.render("Asking the gateway for your usage…");
  }

  /** The latest known limits (window -> {used, allowed}). */
  get limits() {
    return this.usage;
  }

  /**
   * Merge `limits` (window -> {used, allowed}) from a `usage`, `done` or `error` event. Figures
   * from a served turn or a usage answer (`answered`) clear a "limit reached" where the window
   * has room again; an error's figures do not, as it may count turns still in flight.
   * Returns whether a window that showed "limit reached" no longer does.
   */
  update(limits, { answered = false } = {}) {
    if (!limits || typeof limits !== "object") return false;
    const reached = this.reachedWindows();
    for (const [key, value] of Object.entries(limits)) {
      if (!value || typeof value !== "object") continue;
      const entry = { ...this.usage[key], ...value };
      if (answered && entry.exhausted && entry.used < entry.allowed) {
        delete entry.exhausted;
        delete entry.resetsAt;
      }
      this.usage[key] = entry;
    }
    this.fresh = true;
    this.render();
    const now = this.reachedWindows();
    return reached.some((key) => !now.includes(key));
  }

  reachedWindows() {
    return WINDOWS.map(([key]) => key).filter(
      (key) => this.usage[key] && describeWindow(key, this.usage[key]).reached,
    );
  }

  markExhausted(window, resetsAt) {
    this.usage[window] = { ...this.usage[window], exhausted: true, resetsAt };
    this.fresh = true;
    this.render();
  }

  /** No figures could be had from the gateway yet: they come with the first answer instead. */
  unavailable() {
    if (!this.fresh) this.render("Figures appear after your first answer.");
  }

  render(status) {
    const rows = [];
    for (const [key, label] of WINDOWS) {
      if (OPTIONAL.has(key) && !this.usage[key]) continue;
      const view = describeWindow(key, this.usage[key]);
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.dataset.window = key;
      const meter = document.createElement("div");
      meter.className = "meter";
      const fill = document.createElement("span");
      // A width through the CSSOM, not a style attribute: the hosting's CSP forbids inline styles.
      fill.style.setProperty("width", `${(view.share * 100).toFixed(1)}%`);
      meter.classList.toggle("high", view.share >= 0.8);
      meter.classList.toggle("full", view.share >= 1 || view.reached);
      meter.setAttribute("role", "meter");
      meter.setAttribute("aria-label", label);
      const entry = this.usage[key] || {};
      meter.setAttribute("aria-valuemin", "0");
      meter.setAttribute("aria-valuemax", String(entry.allowed ?? 0));
      meter.setAttribute("aria-valuenow", String(Math.min(entry.used ?? 0, entry.allowed ?? 0)));
      meter.setAttribute("aria-valuetext", view.text);
      meter.append(fill);
      const figures = document.createElement("div");
      figures.className = "usage-figures";
      figures.textContent = view.text;
      const used = document.createElement("div");
      used.className = "usage-used";
      used.textContent = view.used;
      dd.append(meter, figures, used);
      if (view.reached) {
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
    this.updated.textContent = status || `Updated ${new Date().toLocaleTimeString()}`;
  }
}
