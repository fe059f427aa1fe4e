// The Vercel AI SDK against a Corral gateway (run by tests/api/test_client_matrix_node.py):
//   node client.mjs BASE_URL PROVIDER...
// For each PROVIDER (pinned through the body's `corral` object): generateText, streamText and a
// generateText that must call a tool (run by the SDK). Prints one JSON object per provider.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, streamText, tool } from "ai";
import { z } from "zod";

const [baseURL, ...providers] = process.argv.slice(2);
const corral = createOpenAICompatible({
  name: "corral",
  baseURL: `${baseURL}/v1`,
  apiKey: "unused",
  includeUsage: true,
});
const model = corral("llama-4-maverick");

const getWeather = tool({
  description: "Current weather for a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `18C and sunny in ${city}`,
});

async function run(provider) {
  const providerOptions = { corral: { corral: { providers: { only: [provider] } } } };
  const plain = await generateText({ model, prompt: "Say hello", maxOutputTokens: 64, providerOptions, maxRetries: 0 });
  const stream = streamText({ model, prompt: "Count to 5", maxOutputTokens: 64, providerOptions, maxRetries: 0 });
  let streamed = "";
  for await (const delta of stream.textStream) streamed += delta;
  const called = await generateText({
    model,
    prompt: "What is the weather in Paris? Use getWeather.",
    tools: { getWeather },
    toolChoice: "required",
    providerOptions,
    maxRetries: 0,
  });
  return {
    text: plain.text,
    usage: plain.usage,
    stream: streamed,
    streamUsage: await stream.usage,
    finishReason: await stream.finishReason,
    toolCalls: called.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
    toolResults: called.toolResults.map((r) => ({ name: r.toolName, output: r.output })),
  };
}

const out = {};
for (const provider of providers) out[provider] = await run(provider);
console.log(JSON.stringify(out));
