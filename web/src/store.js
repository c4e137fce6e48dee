// Conversations kept in the browser, per user, so a reload or a later visit finds them again.
//
// One localStorage entry per user (keyed by user pool and `sub`), holding at most MAX_CHATS
// conversations and MAX_BYTES of JSON: the least recently used conversations go first, and a
// conversation too big on its own loses its oldest messages. Nothing here leaves the browser.
//
// Each conversation also keeps what the gateway counted of it (history.js): `sentFrom`, the index
// of the first message sent with the last turn, and `lastDone`, that turn's `done` usage when it
// ended with one.

const VERSION = 1;
export const MAX_CHATS = 30;
export const MAX_BYTES = 400_000;
const TITLE_CHARS = 60;

export class ChatStore {
  constructor(userPoolId, sub, storage = window.localStorage) {
    this.key = `ai-gateway.chats.${userPoolId}.${sub}`;
    this.storage = storage;
    this.chats = this.load();
  }

  load() {
    try {
      const saved = JSON.parse(this.storage.getItem(this.key) || "null");
      if (saved?.version === VERSION && Array.isArray(saved.chats)) return saved.chats;
    } catch {
      /* unreadable: start afresh */
    }
    return [];
  }

  /** Conversations, most recently used first. */
  list() {
    return [...this.chats].sort((a, b) => b.updated - a.updated);
  }

  get(id) {
    return this.chats.find((c) => c.id === id) || null;
  }

  create(id) {
    const chat = { id, title: "", updated: Date.now(), messages: [], sentFrom: 0, lastDone: null };
    this.chats.push(chat);
    return chat;
  }

  /** Record `chat` as changed and write everything back within the caps. */
  save(chat) {
    if (chat) {
      // Strictly increasing, so two saves in one millisecond still order the list.
      const latest = Math.max(0, ...this.chats.map((c) => c.updated));
      chat.updated = Math.max(Date.now(), latest + 1);
      const first = chat.messages.find((m) => m.role === "user");
      chat.title = first ? first.text.replace(/\s+/g, " ").trim().slice(0, TITLE_CHARS) : "";
    }
    // Empty conversations are not worth keeping across a reload.
    let kept = this.list().filter((c) => c.messages.length).slice(0, MAX_CHATS);
    for (;;) {
      const text = JSON.stringify({ version: VERSION, chats: kept });
      if (text.length <= MAX_BYTES && this.write(text)) break;
      if (kept.length > 1) {
        kept = kept.slice(0, -1); // the least recently used conversation goes first
      } else if (kept.length === 1 && kept[0].messages.length > 2) {
        kept[0] = withoutOldestTurn(kept[0]); // then its oldest turn
      } else {
        this.storage.removeItem(this.key);
        break;
      }
    }
    const keptIds = new Set(kept.map((c) => c.id));
    this.chats = this.chats.filter((c) => keptIds.has(c.id) || !c.messages.length || c === chat);
  }

  write(text) {
    try {
      this.storage.setItem(this.key, text);
      return true;
    } catch {
      return false; // quota exceeded: the caller drops the oldest data and tries again
    }
  }
}

/** `chat` less its first two messages, with `sentFrom` still naming the same message. */
function withoutOldestTurn(chat) {
  const sentFrom = chat.sentFrom || 0;
  return {
    ...chat,
    messages: chat.messages.slice(2),
    sentFrom: Math.max(0, sentFrom - 2),
    // What the gateway counted included a dropped message: it can no longer be sent as counted.
    lastDone: sentFrom < 2 ? null : chat.lastDone,
  };
}
