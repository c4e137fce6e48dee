// The loopback downgrade (src/loopback.js): which URLs it rewrites, and which it must leave alone.
// Run with `node --test web/test/`; tests/e2e/test_web_build.py runs it as part of `make test`.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";

const opened = [];
const fetched = [];
class FakeWebSocket {
  constructor(url, protocols) {
    opened.push(String(url));
    this.protocols = protocols;
  }
}
FakeWebSocket.OPEN = 1;
globalThis.window = {
  WebSocket: FakeWebSocket,
  fetch: (input) => {
    fetched.push(typeof input === "string" ? input : input.url ?? String(input));
    return Promise.resolve("ok");
  },
  location: { protocol: "http:", hostname: "localhost" },
};
const { allowLoopbackDowngrade, downgrade } = await import("../src/loopback.js");

const page = (protocol, hostname) => ({ protocol, hostname });

describe("the loopback downgrade", () => {
  beforeEach(() => {
    opened.length = 0;
    fetched.length = 0;
  });

  it("rewrites wss and https to the local endpoint's host and port for an http loopback page", () => {
    for (const host of ["localhost", "127.0.0.1", "[::1]"]) {
      assert.equal(allowLoopbackDowngrade(`https://${host}:8080/event`, page("http:", host)), true);
      assert.equal(downgrade(`wss://${host}:8080/event/realtime`), `ws://${host}:8080/event/realtime`);
      assert.equal(downgrade(`https://${host}:8080/event`), `http://${host}:8080/event`);
    }
  });

  it("goes through the wrapped WebSocket constructor and fetch", async () => {
    allowLoopbackDowngrade("https://localhost:8080/event", page("http:", "localhost"));
    const socket = new window.WebSocket("wss://localhost:8080/event/realtime", ["aws-appsync-event-ws"]);
    assert.ok(socket instanceof FakeWebSocket);
    await window.fetch("https://localhost:8080/event", { method: "POST" });
    assert.deepEqual(opened, ["ws://localhost:8080/event/realtime"]);
    assert.deepEqual(fetched, ["http://localhost:8080/event"]);
  });

  it("leaves other hosts and ports alone", () => {
    allowLoopbackDowngrade("https://localhost:8080/event", page("http:", "localhost"));
    assert.equal(downgrade("wss://localhost:9090/event/realtime"), "wss://localhost:9090/event/realtime");
    assert.equal(downgrade("wss://127.0.0.1:8080/event/realtime"), "wss://127.0.0.1:8080/event/realtime");
    assert.equal(
      downgrade("https://cognito-idp.us-east-1.amazonaws.com/"),
      "https://cognito-idp.us-east-1.amazonaws.com/",
    );
  });

  it("is off for a page served over https", () => {
    assert.equal(allowLoopbackDowngrade("https://localhost:8080/event", page("https:", "localhost")), false);
    assert.equal(downgrade("wss://localhost:8080/event/realtime"), "wss://localhost:8080/event/realtime");
  });

  it("is off for a page on a non-loopback host", () => {
    assert.equal(allowLoopbackDowngrade("https://localhost:8080/event", page("http:", "192.168.1.5")), false);
    assert.equal(downgrade("wss://localhost:8080/event/realtime"), "wss://localhost:8080/event/realtime");
  });

  it("is off for an endpoint on a non-loopback host (a deployed stack)", () => {
    const aws = "https://abcdefghijklmnopqrstuvwxyz.appsync-api.us-east-1.amazonaws.com/event";
    assert.equal(allowLoopbackDowngrade(aws, page("http:", "localhost")), false);
    const realtime = "wss://abcdefghijklmnopqrstuvwxyz.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime";
    assert.equal(downgrade(realtime), realtime);
    assert.equal(downgrade(aws), aws);
  });
});
