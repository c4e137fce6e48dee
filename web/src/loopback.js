// The loopback downgrade: how the built-in UI reaches the local gateway without a certificate.
//
// Amplify's Events client always turns the HTTP endpoint into a `wss://` URL (it rewrites both
// http:// and https:// to wss://, see @aws-amplify/api-graphql
// Providers/AWSWebSocketProvider/appsyncUrl.mjs). The local gateway serves plain HTTP and TLS on
// one port, with a certificate from a per-machine CA that a browser does not trust, so a page
// opened at http://localhost:PORT/ could not open `wss://localhost:PORT/...` without a trust step.
//
// So, and only when all of these hold, the page rewrites `wss://` to `ws://` and `https://` to
// `http://` for the Events endpoint's own host and port:
//   - the page itself was loaded over plain http from a loopback host (localhost, 127.0.0.1, [::1]);
//   - the Events endpoint in config.json names a loopback host.
// Traffic never leaves the machine in that case, so TLS adds nothing. A page served over https,
// from any other host, or pointed at any other endpoint (a deployed stack) is never touched: the
// wrappers below pass every other URL through unchanged.
//
// This module must be imported before Amplify, so that Amplify finds the wrapped constructors.

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** The endpoint host:port whose traffic is downgraded, or null when none is. */
let downgradedHost = null;

export function isLoopback(hostname) {
  return LOOPBACK.has(hostname.toLowerCase());
}

/**
 * Turn the downgrade on for the Events endpoint `httpEndpoint` if the page and the endpoint are
 * both on loopback and the page came over plain http. Returns whether it is on.
 */
export function allowLoopbackDowngrade(httpEndpoint, page = window.location) {
  downgradedHost = null;
  let endpoint;
  try {
    endpoint = new URL(httpEndpoint);
  } catch {
    return false;
  }
  if (page.protocol === "http:" && isLoopback(page.hostname) && isLoopback(endpoint.hostname)) {
    downgradedHost = endpoint.host;
  }
  return downgradedHost !== null;
}

/** `url` with its secure scheme swapped for the plain one, if it targets the downgraded host. */
export function downgrade(url) {
  if (downgradedHost === null) return url;
  const text = typeof url === "string" ? url : url instanceof URL ? url.href : null;
  if (text === null) return url;
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    return url;
  }
  if (parsed.host !== downgradedHost) return url;
  if (parsed.protocol === "wss:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "http:";
  else return url;
  return parsed.href;
}

function install() {
  const NativeWebSocket = window.WebSocket;
  // A subclass keeps `instanceof WebSocket`, the static readyState constants and the prototype.
  class LoopbackWebSocket extends NativeWebSocket {
    constructor(url, protocols) {
      super(downgrade(url), protocols);
    }
  }
  window.WebSocket = LoopbackWebSocket;

  const nativeFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    if (input instanceof Request) {
      const target = downgrade(input.url);
      return nativeFetch(target === input.url ? input : new Request(target, input), init);
    }
    return nativeFetch(downgrade(input), init);
  };
}

install();
