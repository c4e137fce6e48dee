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

const DOWN_GRACE_MS = 4_000;
const MAX_RETRY_MS = 15_000;

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.outbound  the channel to subscribe to (/replies/<sub>)
   * @param {string} o.inbound   the channel to publish to (/chat/<sub>)
   * @param {(event: object) => void} o.onEvent  each outbound event, parsed
   * @param {(text: string, ok: boolean) => void} o.onStatus
   * @param {() => void} o.onDrop  the connection went down (events may have been missed)
   * @param {(err: Error) => void} o.onSessionOver  tokens no longer work
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
    try {
      await this.open();
    } catch (err) {
      this.failed(err);
    }
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
    this.downTimer = setTimeout(() => this.recover(err), delay * (0.75 + Math.random() / 4));
  }

  async recover() {
    if (this.closed || this.connected) return;
    try {
      const session = await fetchAuthSession({ forceRefresh: true });
      if (!session.tokens) throw Object.assign(new Error("Signed out"), { name: "NoValidAuthTokens" });
    } catch (err) {
      if (this.closed) return;
      if (isSessionOver(err)) {
        this.close();
        this.onSessionOver(err);
      } else {
        this.failed(err); // the gateway is unreachable for now
      }
      return;
    }
    if (this.closed || this.connected) return;
    try {
      await this.open();
    } catch (err) {
      this.failed(err);
    }
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
