/**
 * `npm run backup -- --to FILE`: asks a running server to write a consistent copy of its SQLite
 * database to FILE (the BackupDatabase RPC: an admin token when authentication is on). FILE is a
 * path on the server's machine inside the server's backup directory (WORKFLOW_BACKUP_DIR): a
 * relative one is resolved there by the server, an absolute one must lie under it. Prints the
 * absolute path written and exits 0; exits 1 when the server refuses or fails, 2 on bad usage.
 */
import { readFileSync } from "node:fs";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { WorkflowServiceClient } from "../src/gen/workflow/v1/service.js";
import type { BackupDatabaseResponse } from "../src/gen/workflow/v1/operations.js";
import { ErrorInfo } from "../src/gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "../src/gen/google/rpc/status.js";

const USAGE = `usage: npm run backup -- --to FILE [--server HOST:PORT] [--token TOKEN] [--ca FILE [--cert FILE --key FILE]]
  --to FILE       where the copy goes, inside the server's WORKFLOW_BACKUP_DIR: a file name such as
                  nightly.db or a path relative to that directory, or an absolute path under it
                  (must not exist; its directory must)
  --server        the server's gRPC address (default: WORKFLOW_LISTEN with 0.0.0.0 as 127.0.0.1, else 127.0.0.1:50051)
  --token TOKEN   an admin's bearer token when the server requires tokens (default: $WORKFLOW_TOKEN)
  --ca FILE       the CA of the server's TLS certificate (the server serves TLS)
  --cert, --key   this client's certificate and key (the server requires mutual TLS)`;

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parseArgs(argv: string[]): Record<string, string> {
  const known = new Set(["--to", "--server", "--token", "--ca", "--cert", "--key"]);
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") fail(USAGE, 0);
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!known.has(flag)) fail(`backup: unknown argument "${arg}"\n${USAGE}`, 2);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") fail(`backup: ${flag} needs a value`, 2);
    out[flag.slice(2)] = value;
  }
  return out;
}

function defaultServer(): string {
  const listen = process.env.WORKFLOW_LISTEN;
  if (!listen) return "127.0.0.1:50051";
  return listen.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
}

/** "CODE / REASON: message" of a failed call, REASON from the ErrorInfo in the status details. */
function describe(err: ServiceError): string {
  let reason = "";
  const details = err.metadata?.get("grpc-status-details-bin")[0];
  if (Buffer.isBuffer(details)) {
    for (const any of RpcStatus.decode(details).details) {
      if (any.typeUrl.endsWith("google.rpc.ErrorInfo")) reason = ` / ${ErrorInfo.decode(any.value).reason}`;
    }
  }
  return `${status[err.code] ?? err.code}${reason}: ${err.details}`;
}

const args = parseArgs(process.argv.slice(2));
if (!args.to) fail(`backup: --to FILE is required\n${USAGE}`, 2);
// Sent as given: the server resolves a relative path inside its backup directory, not here.
const target = args.to;
const token = args.token ?? process.env.WORKFLOW_TOKEN;
let channel = credentials.createInsecure();
try {
  if (args.ca) {
    channel = credentials.createSsl(
      readFileSync(args.ca),
      args.key ? readFileSync(args.key) : null,
      args.cert ? readFileSync(args.cert) : null,
    );
  } else if (args.cert || args.key) {
    fail("backup: --cert and --key need --ca (mutual TLS is TLS first)", 2);
  }
} catch (err) {
  fail(`backup: ${(err as Error).message}`, 2);
}

const client = new WorkflowServiceClient(args.server ?? defaultServer(), channel);
const metadata = new Metadata();
if (token) metadata.set("authorization", `Bearer ${token}`);
client.backupDatabase({ path: target }, metadata, (err: ServiceError | null, res: BackupDatabaseResponse) => {
  client.close();
  if (err) fail(`backup failed: ${describe(err)}`, 1);
  process.stdout.write(`backup written: ${res.path} (${res.sizeBytes} bytes, revision ${res.revision})\n`);
});
