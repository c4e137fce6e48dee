// A Node.js client of the AI gateway built with AWS Amplify JS v6 — the runnable example of
// docs/amplify.md, and the integration test `make test` runs against `make dev`.
//
// It reads only the stack outputs (.local/outputs.json, or the file named by OUTPUTS) and the CA
// certificate they name, then: signs in with SRP and with USER_PASSWORD_AUTH, is refused a wrong
// password, subscribes to the user's own channel, posts one turn and reads all of it, is refused
// another user's channel, and closes. It prints one JSON summary line and exits 0 when every
// check held. Against a deployed stack it runs unchanged (no caCertFile, no userPoolEndpoint).
//
//   node examples/amplify-client/client.mjs            # after `make dev` in another terminal

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outputsFile = path.resolve(process.env.OUTPUTS || path.join(REPO, '.local', 'outputs.json'));
const outputs = JSON.parse(readFileSync(outputsFile, 'utf8'));

// Node reads extra trusted CAs only at start-up (NODE_EXTRA_CA_CERTS), and both fetch (used by
// Amplify for Cognito and events.post) and the `ws` WebSocket honour them. So when the outputs
// name a local CA that this process was not started with, run this program again with it.
const ca = outputs.caCertFile ? path.resolve(REPO, outputs.caCertFile) : undefined;
if (ca && process.env.NODE_EXTRA_CA_CERTS !== ca) {
  const child = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: ca, OUTPUTS: outputsFile },
  });
  process.exit(child.status ?? 1);
}

// Node 20 has no global WebSocket (Node 22 has); Amplify's Events client uses the global one.
const { WebSocket } = await import('ws');
globalThis.WebSocket ??= WebSocket;

const { Amplify } = await import('aws-amplify');
const { signIn, signOut, fetchAuthSession } = await import('aws-amplify/auth');
const { events } = await import('aws-amplify/data');

Amplify.configure({
  Auth: {
    Cognito: {
      userPoolId: outputs.userPoolId,
      userPoolClientId: outputs.userPoolClientId,
      // Locally, sign-in goes to the gateway's Cognito endpoint; on AWS this key is absent.
      ...(outputs.userPoolEndpoint ? { userPoolEndpoint: outputs.userPoolEndpoint } : {}),
    },
  },
  API: {
    Events: {
      endpoint: outputs.eventsHttpEndpoint,
      region: outputs.region,
      defaultAuthMode: 'userPool',
    },
  },
});

const TURN_TIMEOUT_MS = 30_000;
const summary = {};

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

function user(tier) {
  const found = (outputs.demoUsers || []).find((u) => u.tier === tier);
  check(found, `the outputs name a demo user in tier ${tier}`);
  return found;
}

async function signInAs({ username, password }, authFlowType) {
  const result = await signIn({ username, password, options: { authFlowType } });
  check(result.isSignedIn, `${authFlowType} sign-in of ${username} completed`);
  const { tokens } = await fetchAuthSession();
  return tokens.accessToken.payload.sub;
}

async function refusedSignIn({ username }) {
  try {
    await signIn({ username, password: 'Not-the-password-1' });
  } catch (err) {
    return err.name;
  }
  await signOut();
  return 'signed in';
}

// Collects one turn from a subscription: events up to and including the first done or error.
function collectTurn(channel) {
  return new Promise((resolve, reject) => {
    const received = [];
    const timer = setTimeout(() => reject(new Error('the turn did not end in time')), TURN_TIMEOUT_MS);
    channel.subscribe({
      next: (message) => {
        received.push(message.event);
        if (message.event.type === 'done' || message.event.type === 'error') {
          clearTimeout(timer);
          // Wait a moment, so an event after the terminal would be caught.
          setTimeout(() => resolve(received), 300);
        }
      },
      error: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
  });
}

// Subscribes to a channel and reports whether the gateway refused it.
async function subscriptionRefused(channelPath) {
  const channel = await events.connect(channelPath);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('not refused'), 10_000);
    channel.subscribe({
      next: () => {},
      error: (err) => {
        clearTimeout(timer);
        resolve(JSON.stringify(err?.errors?.[0]?.message ?? err));
      },
    });
  });
}

async function main() {
  const free = user('free');
  const pro = user(outputs.demoUsers.find((u) => u.tier !== 'free').tier);

  // USER_PASSWORD_AUTH, then SRP (Amplify's default) for another user.
  const otherSub = await signInAs(pro, 'USER_PASSWORD_AUTH');
  summary.passwordSignIn = true;
  await signOut();
  summary.wrongPassword = await refusedSignIn(free);
  check(summary.wrongPassword === 'NotAuthorizedException', 'a wrong SRP password is refused');
  const sub = await signInAs(free, 'USER_SRP_AUTH');
  summary.srpSignIn = true;

  const inbound = `/${outputs.inboundNamespace}/${sub}`;
  const outbound = `/${outputs.outboundNamespace}/${sub}`;
  const channel = await events.connect(outbound);
  const turn = collectTurn(channel);
  // Give the subscription a moment to be acknowledged before publishing.
  await new Promise((r) => setTimeout(r, 500));
  const turnId = `t-${Date.now()}`;
  await events.post(inbound, {
    conversationId: 'c-amplify-example',
    turnId,
    messages: [{ role: 'user', content: [{ text: 'Hello from Amplify [tokens=12]' }] }],
  });
  const received = await turn;
  const seqs = received.map((e) => e.seq);
  const terminals = received.filter((e) => e.type === 'done' || e.type === 'error');
  summary.events = received.length;
  summary.types = [...new Set(received.map((e) => e.type))];
  summary.last = received.at(-1);
  check(terminals.length === 1, `exactly one terminal (got ${terminals.length})`);
  check(received.at(-1).type === 'done', `the turn ends with done (got ${received.at(-1).type})`);
  check(seqs.every((s, i) => s === i), `seq runs 0..n-1 (got ${seqs})`);
  check(received.every((e) => e.turnId === turnId), 'every event belongs to this turn');
  channel.close();

  summary.otherChannel = await subscriptionRefused(`/${outputs.outboundNamespace}/${otherSub}`);
  check(summary.otherChannel.includes('Unauthorized'), "another user's channel is refused");

  const began = Date.now();
  await events.closeAll();
  summary.closeAllMs = Date.now() - began;
  check(summary.closeAllMs < 5_000, `closeAll() returns promptly (took ${summary.closeAllMs} ms)`);
  await signOut();
}

try {
  await main();
  console.log(JSON.stringify({ ok: true, ...summary }));
  process.exit(0);
} catch (err) {
  const cause = err?.cause ? ` (${err.cause?.cause?.message ?? err.cause?.message ?? err.cause})` : "";
  console.log(JSON.stringify({ ok: false, error: `${err?.message ?? err}${cause}`, ...summary }));
  process.exit(1);
}
