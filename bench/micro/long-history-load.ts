/**
 * The load bench/micro/long-history.ts puts on its server, from a process of its own so its client
 * work never delays the health calls being measured: 4 callers of GetInstance as_of_version and
 * RenderDefinition(instance), back to back, until SIGTERM. Prints {"ready"} once connected, then
 * {"calls"} at the end.
 *   usage: tsx bench/micro/long-history-load.ts <address> <versions>
 */
import { credentials } from "@grpc/grpc-js";
import { DiagramFormat, RenderDefinitionRequest, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { api, unaryCall } from "../../test/support/test-server.js";

const [address, versionsArg] = process.argv.slice(2);
const versions = Number(versionsArg);
if (!address || !(versions > 1)) {
  process.stderr.write("usage: tsx bench/micro/long-history-load.ts <address> <versions>\n");
  process.exit(2);
}
const client = new WorkflowServiceClient(address, credentials.createInsecure());
const rpc = api(client);
const asOf = () => rpc.getInstance({ instanceId: "long-1", asOfVersion: 1 + Math.floor(Math.random() * (versions - 1)) });
const render = (format: DiagramFormat) => () =>
  unaryCall(client, client.renderDefinition, RenderDefinitionRequest.fromPartial({ definitionId: "loop", instanceId: "long-1", format }));
const calls = [asOf, render(DiagramFormat.DIAGRAM_FORMAT_MERMAID), asOf, render(DiagramFormat.DIAGRAM_FORMAT_DOT)];
await asOf();
let stop = false;
let done = 0;
process.on("SIGTERM", () => {
  stop = true;
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
await Promise.all(
  Array.from({ length: 4 }, async (_, w) => {
    for (let i = w; !stop; i++) {
      await calls[i % calls.length]!();
      done++;
    }
  }),
);
process.stdout.write(`${JSON.stringify({ calls: done })}\n`);
client.close();
