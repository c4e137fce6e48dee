// The ai-gateway web chat: Cognito sign-in, the AppSync Events WebSocket protocol, streaming
// answers and the token-usage panel. Everything it knows about a gateway comes from config.json
// (the stack outputs plus the tier document), so the same files run locally and against AWS.

const WINDOWS = [
  ["dailyInputTokens", "Input · last 24 hours"],
  ["dailyOutputTokens", "Output · last 24 hours"],
  ["monthlyInputTokens", "Input · this month"],
  ["monthlyOutputTokens", "Output · this month"],
];
const WINDOW_PHRASE = {
  dailyInputTokens: "daily input tokens",
  dailyOutputTokens: "daily output tokens",
  monthlyInputTokens: "monthly input tokens",
  monthlyOutputTokens: "monthly output tokens",
};
const TURN_TIMEOUT_MS = 90_000;
// Providers other than Bedrock are labelled wherever a model is named.
const PROVIDERS = {
  local: { badge: "Local model", meta: "local model",
    title: "Answers come from the gateway's deterministic local model, not Amazon Bedrock." },
  openai: { badge: "OpenAI-compatible", meta: "OpenAI-compatible endpoint",
    title: "Answers come from an OpenAI-compatible endpoint, not Amazon Bedrock." },
};

const $ = (id) => document.getElementById(id);

// crypto.randomUUID exists only in secure contexts; the page may be served over plain http
// from another host (python -m local --host 0.0.0.0), where getRandomValues still works.
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const state = { config: null, pool: null, user: null, claims: null, tier: null, socket: null,
  outbound: null, conversationId: null, history: [], turn: null, usage: null };

// --- configuration -------------------------------------------------------------------------

async function loadConfig() {
  const url = new URLSearchParams(location.search).get("config") || "config.json";
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`Could not load ${url} (${response.status})`);
  return response.json();
}

function tierFor(groups) {
  const doc = state.config.tierConfig;
  if (!doc) return null;
  const matching = (groups || []).filter((g) => doc.tiers[g]).map((g) => ({ name: g, ...doc.tiers[g] }));
  if (!matching.length) return { name: doc.defaultTier, ...doc.tiers[doc.defaultTier] };
  matching.sort((a, b) => a.precedence - b.precedence || a.name.localeCompare(b.name));
  return matching[0];
}

// --- Cognito sign-in ----------------------------------------------------------------------------

function cognito() { return window.AmazonCognitoIdentity; }

function userPool() {
  const c = state.config;
  const options = { UserPoolId: c.userPoolId, ClientId: c.userPoolClientId };
  if (c.cognitoEndpoint) options.endpoint = c.cognitoEndpoint;
  return new (cognito().CognitoUserPool)(options);
}

function currentSession(user) {
  return new Promise((resolve, reject) => {
    user.getSession((err, session) => (err || !session?.isValid() ? reject(err) : resolve(session)));
  });
}

async function idToken() {
  const session = await currentSession(state.user); // refreshes with the refresh token if needed
  return session.getIdToken().getJwtToken();
}

function signIn(username, password) {
  const Cognito = cognito();
  const user = new Cognito.CognitoUser({ Username: username, Pool: state.pool });
  // Locally the client allows USER_PASSWORD_AUTH; a deployed stack's client allows SRP only.
  if (state.config.authFlow === "USER_PASSWORD_AUTH") user.setAuthenticationFlowType("USER_PASSWORD_AUTH");
  const details = new Cognito.AuthenticationDetails({ Username: username, Password: password });
  return new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: () => resolve(user),
      onFailure: (err) => reject(err),
      newPasswordRequired: () => askFor("new-password-step", "Choose a new password").then((pw) =>
        user.completeNewPasswordChallenge(pw, {}, callbacks)),
      totpRequired: () => askFor("totp-step", "Enter the code from your authenticator app")
        .then((code) => user.sendMFACode(code, callbacks, "SOFTWARE_TOKEN_MFA")),
      mfaSetup: () => user.associateSoftwareToken({
        associateSecretCode: (secret) => {
          const setup = $("totp-setup");
          setup.textContent = `Add this key to your authenticator app, then enter its code: ${secret}`;
          setup.hidden = false;
          askFor("totp-step", "Set up your authenticator app").then((code) =>
            user.verifySoftwareToken(code, "ai-gateway", callbacks));
        },
        onFailure: reject,
      }),
    };
    user.authenticateUser(details, callbacks);
  });
}

let pendingStep = null;
function askFor(stepId, message) {
  $(stepId).hidden = false;
  $("sign-in-button").disabled = false;
  showSignInError(message);
  $(stepId).querySelector("input").focus();
  return new Promise((resolve) => { pendingStep = { stepId, resolve }; });
}

function showSignInError(message) {
  const el = $("sign-in-error");
  el.textContent = message || "";
  el.hidden = !message;
}

// --- the AppSync Events WebSocket ----------------------------------------------------------------

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

class EventsSocket {
  constructor(config, token, onStatus) {
    this.realtime = config.eventsRealtimeEndpoint;
    this.host = new URL(config.eventsHttpEndpoint).host;
    this.token = token;
    this.onStatus = onStatus;
    this.pending = new Map(); // operation id -> {resolve, reject}
    this.subscriptions = new Map(); // subscription id -> {channel, onEvent}
    this.closed = false;
    this.attempt = 0;
  }

  auth(token) { return { host: this.host, Authorization: token }; }

  async connect() {
    const token = await this.token();
    const protocols = ["aws-appsync-event-ws", `header-${base64url(JSON.stringify(this.auth(token)))}`];
    this.onStatus("Connecting…", false);
    const ws = new WebSocket(this.realtime, protocols);
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init" }));
      ws.onerror = () => reject(new Error("Could not reach the gateway"));
      ws.onclose = (e) => reject(new Error(`Connection closed (${e.code})`));
      ws.onmessage = (e) => {
        const message = JSON.parse(e.data);
        if (message.type === "connection_ack") {
          this.timeoutMs = message.connectionTimeoutMs || 300_000;
          resolve();
        } else if (message.type === "connection_error") {
          reject(new Error(message.errors?.[0]?.message || "Connection refused"));
        }
      };
    });
    this.attempt = 0;
    this.lastSeen = Date.now();
    ws.onmessage = (e) => this.receive(JSON.parse(e.data));
    ws.onclose = () => this.reconnect();
    ws.onerror = () => {};
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastSeen > this.timeoutMs) ws.close(); // no "ka" in time
    }, 5_000);
    this.onStatus("Connected", true);
    for (const [id, sub] of this.subscriptions) await this.sendSubscribe(id, sub.channel);
  }

  reconnect() {
    clearInterval(this.watchdog);
    for (const { reject } of this.pending.values()) reject(new Error("Connection lost"));
    this.pending.clear();
    if (this.closed) return;
    const delay = Math.min(30_000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.onStatus("Reconnecting…", false);
    setTimeout(() => this.connect().catch(() => this.reconnect()), delay);
  }

  close() {
    this.closed = true;
    clearInterval(this.watchdog);
    this.ws?.close();
  }

  receive(message) {
    this.lastSeen = Date.now();
    const { type, id } = message;
    if (type === "ka") return;
    if (type === "data") {
      this.subscriptions.get(id)?.onEvent(JSON.parse(message.event));
      return;
    }
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    if (type.endsWith("_success")) waiter.resolve(message);
    else waiter.reject(Object.assign(new Error(message.errors?.[0]?.message || type), { errors: message.errors }));
  }

  async request(message) {
    const id = message.id;
    const answer = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.ws.send(JSON.stringify({ ...message, authorization: this.auth(await this.token()) }));
    return answer;
  }

  sendSubscribe(id, channel) { return this.request({ type: "subscribe", id, channel }); }

  async subscribe(channel, onEvent) {
    const id = uuid();
    await this.sendSubscribe(id, channel);
    this.subscriptions.set(id, { channel, onEvent });
    return id;
  }

  publish(channel, events) {
    return this.request({ type: "publish", id: uuid(), channel,
      events: events.map((e) => JSON.stringify(e)) });
  }
}

// --- chat ---------------------------------------------------------------------------------------

function setConnection(text, ok) {
  const el = $("connection");
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

function addMessage(role, text) {
  $("empty").hidden = true;
  const li = document.createElement("li");
  li.className = `message ${role}`;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Assistant";
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  $("messages").append(li);
  scrollToEnd();
  return li;
}

function scrollToEnd() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function newChat() {
  state.conversationId = `c-${uuid()}`;
  state.history = [];
  $("messages").replaceChildren();
  $("empty").hidden = false;
  $("prompt").focus();
}

async function send(text) {
  const turnId = `t-${uuid()}`;
  const userMessage = { role: "user", content: [{ text }] };
  const modelId = $("model").value || undefined;
  addMessage("user", text);
  const bubble = addMessage("assistant", "");
  bubble.classList.add("streaming");
  bubble.setAttribute("aria-busy", "true"); // screen readers read the answer once, when done
  const turn = { id: turnId, bubble, text: "", next: 0, early: new Map(), userMessage, done: false };
  state.turn = turn;
  setBusy(true);
  turn.timer = setTimeout(() => finishWithError(turn, { code: "timeout", retryable: true,
    message: "No answer arrived from the gateway in time." }), TURN_TIMEOUT_MS);
  try {
    await state.socket.publish(`/${state.config.inboundNamespace}/${state.claims.sub}`, [{
      conversationId: state.conversationId, turnId, modelId,
      messages: [...state.history, userMessage],
    }]);
  } catch (err) {
    finishWithError(turn, { code: "publish_failed", retryable: true,
      message: `The message was not sent: ${err.message}` });
  }
}

function onOutbound(event) {
  const turn = state.turn;
  if (!turn || event.turnId !== turn.id || turn.done) return;
  // Events of a turn carry seq 0, 1, 2...; apply them in that order whatever order they arrive.
  turn.early.set(event.seq, event);
  while (turn.early.has(turn.next)) {
    const next = turn.early.get(turn.next);
    turn.early.delete(turn.next++);
    apply(turn, next);
  }
}

function apply(turn, event) {
  if (event.type === "delta") {
    turn.text += event.text || "";
    turn.bubble.querySelector(".text").textContent = turn.text;
    scrollToEnd();
  } else if (event.type === "done") {
    finish(turn);
    state.history.push(turn.userMessage, { role: "assistant", content: [{ text: turn.text }] });
    const meta = document.createElement("div");
    meta.className = "meta";
    const provider = PROVIDERS[event.provider || state.config.modelProvider];
    meta.textContent = [`${event.modelId}${provider ? ` (${provider.meta})` : ""}`,
      `${event.usage?.inputTokens ?? "?"} in / ${event.usage?.outputTokens ?? "?"} out tokens`,
      event.cached ? "prepared answer" : null].filter(Boolean).join(" · ");
    turn.bubble.append(meta);
    scrollToEnd();
    if (event.limits) renderUsage(event.limits);
  } else if (event.type === "error") {
    finishWithError(turn, event);
  }
}

function finish(turn) {
  turn.done = true;
  clearTimeout(turn.timer);
  turn.bubble.classList.remove("streaming");
  turn.bubble.removeAttribute("aria-busy");
  if (state.turn === turn) state.turn = null;
  setBusy(false);
}

function finishWithError(turn, error) {
  if (turn.done) return;
  finish(turn);
  const problem = document.createElement("div");
  problem.className = "problem";
  problem.setAttribute("role", "alert");
  problem.dataset.code = error.code;
  problem.textContent = describeError(error);
  if (!turn.text) turn.bubble.querySelector(".text").hidden = true;
  turn.bubble.append(problem);
  scrollToEnd();
  if (error.code === "limit_exceeded" && error.window) markExhausted(error.window, error.resetsAt);
}

function describeError(error) {
  const tier = state.tier?.name ? `the ${state.tier.name} tier` : "your tier";
  switch (error.code) {
    case "limit_exceeded": {
      const window = WINDOW_PHRASE[error.window] || "tokens";
      const when = error.resetsAt ? ` You can chat again from ${formatTime(error.resetsAt)}.` : "";
      return `Limit reached: you have used all your ${window} on ${tier}.${when}`;
    }
    case "model_not_allowed":
      return `That model is not available on ${tier}. ${error.message || ""}`.trim();
    case "unauthorized":
      return "The gateway refused this request for your account. Sign out and in again.";
    default: {
      const again = error.retryable ? " You can try again." : "";
      return `${error.message || "Something went wrong."}${again}${error.requestId ? ` (request ${error.requestId})` : ""}`;
    }
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("prompt").setAttribute("aria-busy", String(busy));
}

// --- usage panel --------------------------------------------------------------------------------

function renderUsage(limits) {
  state.usage = { ...(state.usage || {}), ...limits };
  const list = $("usage-list");
  list.replaceChildren();
  for (const [key, label] of WINDOWS) {
    const entry = state.usage[key] || { used: null, allowed: state.tier?.[key] ?? null };
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.dataset.window = key;
    const meter = document.createElement("div");
    meter.className = "meter";
    const fill = document.createElement("span");
    const share = entry.used != null && entry.allowed ? Math.min(1, entry.used / entry.allowed) : 0;
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    meter.classList.toggle("high", share >= 0.8);
    meter.classList.toggle("full", share >= 1 || Boolean(entry.exhausted));
    meter.setAttribute("role", "meter");
    meter.setAttribute("aria-label", label);
    meter.setAttribute("aria-valuemin", "0");
    meter.setAttribute("aria-valuemax", String(entry.allowed ?? 0));
    meter.setAttribute("aria-valuenow", String(entry.used ?? 0));
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
        ? `Limit reached · available again from ${formatTime(entry.resetsAt)}` : "Limit reached";
      dd.append(reset);
    }
    list.append(dt, dd);
  }
  $("usage-updated").textContent = limits && Object.keys(limits).length
    ? `Updated ${new Date().toLocaleTimeString()}` : "Figures appear after your first answer.";
}

function markExhausted(window, resetsAt) {
  const current = state.usage?.[window] || { used: null, allowed: state.tier?.[window] ?? null };
  renderUsage({ [window]: { ...current, exhausted: true, resetsAt } });
}

// --- views --------------------------------------------------------------------------------------

function showNotice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

async function enterChat(user) {
  state.user = user;
  const session = await currentSession(user);
  state.claims = session.getIdToken().decodePayload();
  state.tier = tierFor(state.claims["cognito:groups"]);
  $("account-name").textContent = state.claims["cognito:username"] || state.claims.email || state.claims.sub;
  $("account-tier").textContent = state.tier ? `${state.tier.name} tier` : "tier default";
  $("usage-tier").textContent = state.tier?.name || "current";
  $("account").hidden = false;
  $("sign-in-view").hidden = true;
  $("chat-view").hidden = false;
  fillModels();
  state.usage = null;
  renderUsage({});
  newChat();
  state.socket = new EventsSocket(state.config, idToken, setConnection);
  try {
    await state.socket.connect();
    await state.socket.subscribe(`/${state.config.outboundNamespace}/${state.claims.sub}`, onOutbound);
    setConnection("Connected", true);
  } catch (err) {
    setConnection("Not connected", false);
    showNotice(`Could not subscribe to your channel: ${err.message}`);
  }
}

function fillModels() {
  const select = $("model");
  select.replaceChildren();
  const local = state.config.modelProvider === "local";
  const models = state.tier?.models || [];
  if (!models.length) select.append(new Option("Tier default", ""));
  for (const model of models) {
    const option = new Option(local ? `${model} (local)` : model, model);
    option.selected = model === state.tier.defaultModel;
    select.append(option);
  }
  const provider = PROVIDERS[state.config.modelProvider];
  $("model-note").hidden = !provider;
  if (provider) {
    $("model-note").textContent = provider.badge;
    $("model-note").title = provider.title;
  }
}

function signOut() {
  state.socket?.close();
  state.socket = null;
  state.user?.signOut();
  state.user = null;
  $("account").hidden = true;
  $("chat-view").hidden = true;
  $("sign-in-view").hidden = false;
  showNotice("");
}

function showDemoUsers() {
  const users = state.config.demoUsers || [];
  $("demo-users").hidden = !users.length;
  const list = $("demo-user-list");
  list.replaceChildren();
  for (const user of users) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.innerHTML = "<span></span><span class=\"badge tier\"></span>";
    button.firstChild.textContent = user.username;
    button.lastChild.textContent = user.tier;
    button.addEventListener("click", () => {
      $("username").value = user.username;
      $("password").value = user.password;
      $("sign-in-button").focus();
    });
    li.append(button);
    list.append(li);
  }
}

async function main() {
  try {
    state.config = await loadConfig();
  } catch (err) {
    showNotice(`${err.message}. Start the gateway with "make dev", or pass ?config=<url>.`);
    return;
  }
  const env = $("env-badge");
  env.textContent = state.config.environment === "local" ? "local" : state.config.stack || "";
  env.hidden = !env.textContent;
  state.pool = userPool();
  showDemoUsers();

  $("sign-in-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (pendingStep) {
      const { stepId, resolve } = pendingStep;
      pendingStep = null;
      resolve($(stepId).querySelector("input").value.trim());
      return;
    }
    showSignInError("");
    $("sign-in-button").disabled = true;
    try {
      await enterChat(await signIn($("username").value.trim(), $("password").value));
    } catch (err) {
      showSignInError(err.message || "Sign-in failed");
    } finally {
      $("sign-in-button").disabled = false;
    }
  });
  $("sign-out").addEventListener("click", signOut);
  $("new-chat").addEventListener("click", newChat);
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || state.turn) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });

  const user = state.pool.getCurrentUser();
  if (user) {
    try {
      await currentSession(user);
      await enterChat(user);
      return;
    } catch { /* expired: sign in again */ }
  }
  $("sign-in-view").hidden = false;
  $("username").focus();
}

window.addEventListener("DOMContentLoaded", main);
