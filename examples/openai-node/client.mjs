// The gateway's OpenAI-compatible API from Node.js with the official `openai` package: only the
// base URL and the key change. The key is a Cognito access token; make dev's local CA is trusted
// with NODE_EXTRA_CA_CERTS (docs/openai.md).
//
//   OPENAI_BASE_URL=https://127.0.0.1:8080/v1 OPENAI_API_KEY=<access token> \
//   NODE_EXTRA_CA_CERTS=.local/ca/ca.pem node client.mjs complete "Hello"
//
// Each command prints one JSON line (the tests read it): models, complete, stream, cancel.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: process.env.OPENAI_API_KEY,
  maxRetries: 0,
});
const model = process.env.MODEL || "amazon.nova-micro-v1:0";
const [command = "complete", prompt = "Hello"] = process.argv.slice(2);
const messages = [{ role: "user", content: prompt }];

async function run() {
  switch (command) {
    case "models": {
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      return { models: ids };
    }
    case "complete": {
      const answer = await client.chat.completions.create({ model, messages });
      return {
        text: answer.choices[0].message.content,
        finish: answer.choices[0].finish_reason,
        usage: answer.usage,
      };
    }
    case "stream": {
      const stream = await client.chat.completions.create({
        model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let usage = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.usage) usage = chunk.usage;
      }
      return { text, usage };
    }
    case "cancel": {
      // Leave after five pieces of the answer, as a user closing the page would.
      const stream = await client.chat.completions.create({ model, messages, stream: true });
      let pieces = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) pieces += 1;
        if (pieces === 5) {
          stream.controller.abort();
          break;
        }
      }
      return { pieces };
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

try {
  console.log(JSON.stringify(await run()));
} catch (err) {
  if (err instanceof OpenAI.APIError) {
    console.log(
      JSON.stringify({
        error: err.constructor.name,
        status: err.status,
        code: err.code,
        retryAfter: err.headers?.get?.("retry-after") ?? null,
      }),
    );
  } else {
    throw err;
  }
}
