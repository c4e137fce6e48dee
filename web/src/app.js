// The ai-gateway web chat: sign-in, conversations, streaming answers, Stop and the usage panel.
// Where the gateway is comes from config.json (the stack outputs), so the same build runs against
// `make dev` and against a deployed stack; the user's tier, models and usage come from the
// gateway itself, over the chat channel, so a tier change never touches the site.
import { configureAmplify, currentClaims, signInWith, signOutHere } from "./auth.js";
import { Connection } from "./connection.js";
import { allowLoopbackDowngrade } from "./loopback.js";
import { handleCopyButtons } from "./markdown.js";
import { ChatStore } from "./store.js";
import { UsagePanel } from "./usage.js";
import { ChatView } from "./chat.js";
import { ModelPicker } from "./models.js";

const $ = (id) => document.getElementById(id);

// Providers other than Bedrock are labelled wherever a model is named.
const PROVIDERS = {
  local: {
    badge: "Local model",
    title: "Answers come from the gateway's deterministic local model, not Amazon Bedrock.",
  },
  openai: {
    badge: "OpenAI-compatible",
    title: "Answers come from an OpenAI-compatible endpoint, not Amazon Bedrock.",
  },
};

const SESSION_OVER =
  "Your sign-in is no longer accepted (it expired, or the gateway restarted). Sign in again.";

const state = { config: null, connection: null, chat: null, models: null };

async function loadConfig() {
  const url = new URLSearchParams(location.search).get("config") || "/config.json";
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`Could not load ${url} (${response.status})`);
  return response.json();
}

async function applyConfig() {
  state.config = await loadConfig();
  allowLoopbackDowngrade(state.config.eventsHttpEndpoint);
  configureAmplify(state.config);
  const env = $("env-badge");
  env.textContent = state.config.environment === "local" ? "local" : state.config.stack || "";
  env.hidden = !env.textContent;
  showDemoUsers();
}

// --- views ----------------------------------------------------------------------------------

function showNotice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

function showSignInError(message) {
  const el = $("sign-in-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function showSignIn(message) {
  $("account").hidden = true;
  $("chat-view").hidden = true;
  $("sign-in-view").hidden = false;
  for (const step of ["new-password-step", "totp-step", "totp-setup"]) $(step).hidden = true;
  showSignInError("");
  showNotice(message || "");
  $("username").focus();
}

async function enterChat(claims) {
  $("account-name").textContent =
    claims["cognito:username"] || claims.email || claims.sub;
  showTier(null);
  $("account").hidden = false;
  $("sign-in-view").hidden = true;
  $("chat-view").hidden = false;
  showNotice("");
  state.models = new ModelPicker($("model"), state.config.userPoolId, claims.sub);
  showProvider();

  const usage = new UsagePanel($("usage-list"), $("usage-updated"));
  usage.reset();
  const store = new ChatStore(state.config.userPoolId, claims.sub);
  const chat = new ChatView({
    store,
    usage,
    publish: (event) => connection.publish(event),
    onTier: (answer) => {
      showTier(answer.tier);
      state.models?.fill(answer.models, answer.defaultModel);
    },
  });
  state.chat = chat;
  chat.openLatest();

  const connection = new Connection({
    outbound: `/${state.config.outboundNamespace}/${claims.sub}`,
    inbound: `/${state.config.inboundNamespace}/${claims.sub}`,
    onEvent: (event) => chat.onEvent(event),
    onStatus: setConnection,
    onDrop: () => chat.interrupt(),
    onSessionOver: () => sessionOver(),
    // Subscribed: ask for the tier and usage now, so a reload shows them before any answer.
    onReady: () => chat.requestUsage(),
  });
  state.connection = connection;
  await connection.start();
  $("prompt").focus();
}

function setConnection(text, ok) {
  const el = $("connection");
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

function showTier(name) {
  $("account-tier").textContent = name ? `${name} tier` : "";
  $("account-tier").hidden = !name;
  $("usage-tier").textContent = name ? `the ${name} tier` : "your tier";
}

function showProvider() {
  const provider = PROVIDERS[state.config.modelProvider];
  $("model-note").hidden = !provider;
  if (provider) {
    $("model-note").textContent = provider.badge;
    $("model-note").title = provider.title;
  }
}

function leaveChat() {
  state.chat?.interrupt();
  state.chat?.detach();
  state.chat = null;
  state.connection?.close();
  state.connection = null;
  state.models = null;
}

async function signOutClicked() {
  leaveChat();
  await signOutHere();
  showSignIn("");
}

async function sessionOver() {
  leaveChat();
  await signOutHere();
  try {
    // A restarted local gateway has a new user pool: sign in against the one it has now.
    await applyConfig();
  } catch {
    /* keep the config we have; the sign-in form reports what fails */
  }
  showSignIn(SESSION_OVER);
}

function showDemoUsers() {
  const users = state.config.demoUsers || [];
  $("demo-users").hidden = !users.length;
  const items = users.map((user) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const name = document.createElement("span");
    name.textContent = user.username;
    const tier = document.createElement("span");
    tier.className = "badge tier";
    tier.textContent = user.tier;
    button.append(name, tier);
    button.addEventListener("click", () => {
      $("username").value = user.username;
      $("password").value = user.password;
      $("sign-in-button").focus();
    });
    li.append(button);
    return li;
  });
  $("demo-user-list").replaceChildren(...items);
}

// --- sign-in form -----------------------------------------------------------------------------

let pendingStep = null;

function askFor(step, detail) {
  const stepId = step === "new-password" ? "new-password-step" : "totp-step";
  $(stepId).hidden = false;
  if (detail.setupKey) {
    $("totp-setup").textContent =
      `Add this key to your authenticator app, then enter its code: ${detail.setupKey}`;
    $("totp-setup").hidden = false;
  }
  $("sign-in-button").disabled = false;
  showSignInError(
    step === "new-password"
      ? "Choose a new password"
      : "Enter the code from your authenticator app",
  );
  const input = $(stepId).querySelector("input");
  input.focus();
  return new Promise((resolve) => {
    pendingStep = () => resolve(input.value.trim());
  });
}

async function signInSubmitted(event) {
  event.preventDefault();
  if (pendingStep) {
    const answer = pendingStep;
    pendingStep = null;
    $("sign-in-button").disabled = true;
    answer();
    return;
  }
  showSignInError("");
  showNotice("");
  $("sign-in-button").disabled = true;
  try {
    await signInWith(state.config, $("username").value.trim(), $("password").value, askFor);
    $("password").value = "";
    await enterChat(await currentClaims());
  } catch (err) {
    showSignInError(err.message || "Sign-in failed");
  } finally {
    pendingStep = null;
    $("sign-in-button").disabled = false;
  }
}

// --- panels on narrow screens -------------------------------------------------------------------

function wirePanelToggles() {
  for (const [buttonId, panelId] of [["show-chats", "chats"], ["show-usage", "usage"]]) {
    const button = $(buttonId);
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") !== "true";
      for (const other of ["show-chats", "show-usage"]) {
        $(other).setAttribute("aria-expanded", "false");
      }
      for (const panel of ["chats", "usage"]) $(panel).classList.remove("open");
      button.setAttribute("aria-expanded", String(open));
      $(panelId).classList.toggle("open", open);
      if (open) $(panelId).querySelector("h2").focus();
    });
  }
  for (const panel of ["chats", "usage"]) {
    $(panel).querySelector("h2").tabIndex = -1;
    $(panel).addEventListener("keydown", (e) => {
      if (e.key === "Escape" && $(panel).classList.contains("open")) closePanels(true);
    });
  }
}

function closePanels(refocus = false) {
  for (const [buttonId, panelId] of [["show-chats", "chats"], ["show-usage", "usage"]]) {
    const wasOpen = $(panelId).classList.contains("open");
    $(panelId).classList.remove("open");
    $(buttonId).setAttribute("aria-expanded", "false");
    if (wasOpen && refocus) $(buttonId).focus();
  }
}

export async function main() {
  try {
    await applyConfig();
  } catch (err) {
    showNotice(`${err.message}. Start the gateway with "make dev", or pass ?config=<url>.`);
    return;
  }
  $("sign-in-form").addEventListener("submit", signInSubmitted);
  $("sign-out").addEventListener("click", signOutClicked);
  $("new-chat").addEventListener("click", () => {
    state.chat?.newChat();
    closePanels();
  });
  $("messages").addEventListener("click", (e) => {
    // The "New chat" a refusal offers (messages.js).
    if (!e.target.closest('button[data-action="new-chat"]') || !state.chat) return;
    state.chat.newChat();
  });
  $("model").addEventListener("change", () => state.models?.remember());
  $("chat-list").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-chat]");
    if (!button || !state.chat) return;
    state.chat.open(button.dataset.chat);
    closePanels();
    $("prompt").focus();
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || !state.chat || state.chat.busy) return;
    $("prompt").value = "";
    state.chat.send(text, $("model").value || undefined);
  });
  $("stop").addEventListener("click", () => {
    state.chat?.stop();
    $("prompt").focus();
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    } else if (e.key === "Escape" && state.chat?.busy) {
      e.preventDefault();
      state.chat.stop();
    }
  });
  handleCopyButtons($("messages"));
  wirePanelToggles();
  addEventListener("pagehide", () => state.chat?.persist());

  let claims = null;
  try {
    claims = await currentClaims();
  } catch {
    /* a session that cannot be refreshed: sign in again */
  }
  if (claims) {
    await enterChat(claims);
  } else {
    showSignIn("");
  }
}
