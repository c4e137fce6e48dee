// The user's Event API connection, on Amplify's `events` client (aws-amplify/data).
//
// Amplify opens the WebSocket, authorises every operation with the user pool's tokens and
// re-subscribes by itself after short drops. This class adds what a chat needs on top:
//   - it reports the connection state (Amplify's Hub "api" channel) to the page;
//   - when a drop is noticed it tells the page at once, so a turn that was streaming is marked
//     as interrupted instead of waiting for events that went by while the socket was down;
//   - when the subscription fails or the connection stays down, it refreshes the tokens; a
//     session Cognito no longer accepts (expired, or a restarted local gateway with a new user
//     pool) ends with `onSessionOver`, anything else is retried with a growing delay.
import { CONNECTION_STATE_CHANGE, ConnectionState, events } from "aws-amplify/data";
import { Hub } from "aws-amplify/utils";
import { fetchAuthSession } from "aws-amplify/auth";
import { isSessionOver } from "./auth.js";

// Amplify retries a dropped connection after 5 s (RECONNECT_DELAY in @aws-amplify/api-graphql
// Providers/constants.mjs); this class steps in only if that has not worked a little later.
const DOWN_GRACE_MS = 8_000;
const MAX_RETRY_MS = 15_000;

/** Whether the gateway refused the connection or subscription for its authorisation. */
function isRefusal(err) {
  let text;
  try {
    text = `${err?.name} ${err?.message} ${JSON.stringify(err)}`;
  } catch {
    text = String(err);
  }
  return /Unauthori[sz]ed|Forbidden|\b40[13]\b|No current user|NoValidAuthTokens/i.test(text);
}

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.outbound  the channel to subscribe to (/replies/<sub>)
   * @param {string} o.inbound   the channel to publish to (/chat/<sub>)
   * @param {(event: object) => void} o.onEvent  each outbound event, parsed
   * @param {(text: string, ok: boolean) => void} o.onStatus
   * @param {() => void} o.onDrop  the connection went down (events may have been missed)
   * @param {(err: Error) => void} o.onSessionOver  tokens no longer work
   * @param {() => void} [o.onReady]  subscribed: events published from now on get their answers
   */
  constructor(o) {
    Object.assign(this, o);
    this.closed = false;
    this.attempt = 0;
    this.connected = false;
    this.stopHub = Hub.listen("api", ({ payload }) => {
      if (payload.event === CONNECTION_STATE_CHANGE) this.state(payload.data.connectionState);
    });
  }

  async start() {
    this.onStatus("Connecting…", false);
    this.connected = false;
    await this.recover();
  }

  async open() {
    this.channel?.close().catch(() => {});
    this.sender?.close().catch(() => {});
    // Two channel handles on Amplify's one WebSocket: a channel handle publishes to the channel
    // it was opened for, and the user subscribes to one channel and publishes to the other.
    this.channel = await events.connect(this.outbound);
    this.sender = await events.connect(this.inbound);
    if (this.closed) return;
    const channel = this.channel;
    const subscription = channel.subscribe({
      next: (message) => this.onEvent(message.event),
      error: (err) => {
        if (this.channel === channel) this.failed(err);
      },
    });
    this.subscription = subscription;
    await subscription.ready;
    this.attempt = 0;
    this.up();
    this.onReady?.();
  }

  /** Publish one event to the inbound channel over the open WebSocket. */
  async publish(event) {
    if (!this.sender) throw new Error("Not connected");
    return this.sender.publish(event);
  }

  state(connectionState) {
    if (this.closed) return;
    if (connectionState === ConnectionState.Connected) {
      this.up();
    } else if (
      connectionState === ConnectionState.ConnectionDisrupted ||
      connectionState === ConnectionState.ConnectionDisruptedPendingNetwork
    ) {
      this.down();
    }
  }

  up() {
    clearTimeout(this.downTimer);
    this.connected = true;
    this.onStatus("Connected", true);
  }

  down() {
    if (this.connected) this.onDrop();
    this.connected = false;
    this.onStatus("Reconnecting…", false);
    // Amplify reconnects by itself; if it has not managed to shortly, check the tokens.
    clearTimeout(this.downTimer);
    this.downTimer = setTimeout(() => this.recover(), DOWN_GRACE_MS);
  }

  failed(err) {
    if (this.closed) return;
    if (this.connected) this.onDrop();
    this.connected = false;
    this.onStatus("Reconnecting…", false);
    clearTimeout(this.downTimer);
    const delay = Math.min(MAX_RETRY_MS, 1000 * 2 ** this.attempt++);
    this.downTimer = setTimeout(() => this.recover(), delay * (0.75 + Math.random() / 4));
  }

  async recover() {
    if (this.closed || this.connected) return;
    try {
      // Amplify refreshes tokens that have expired; no tokens means the session is over.
      const session = await fetchAuthSession();
      if (!session.tokens) throw Object.assign(new Error("Signed out"), { name: "NoValidAuthTokens" });
    } catch (err) {
      this.refreshFailed(err);
      return;
    }
    if (this.closed || this.connected) return;
    try {
      await this.open();
      this.refused = false;
    } catch (err) {
      if (!isRefusal(err)) {
        this.failed(err); // the gateway is unreachable for now
      } else if (!this.refused) {
        // The gateway refused tokens Amplify thought valid: refresh them once and try again.
        this.refused = true;
        fetchAuthSession({ forceRefresh: true }).then(
          () => this.failed(err),
          (refreshErr) => this.refreshFailed(refreshErr),
        );
      } else {
        this.sessionOver(err);
      }
    }
  }

  refreshFailed(err) {
    if (this.closed) return;
    if (isSessionOver(err)) this.sessionOver(err);
    else this.failed(err); // Cognito is unreachable for now
  }

  sessionOver(err) {
    if (this.closed) return;
    this.close();
    this.onSessionOver(err);
  }

  close() {
    this.closed = true;
    clearTimeout(this.downTimer);
    this.stopHub();
    this.channel?.close().catch(() => {});
    this.sender?.close().catch(() => {});
    this.channel = this.sender = null;
  }
}
