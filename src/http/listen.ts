/** Binding a node:http server to a `host:port` setting, shared by the HTTP listener and the metrics listener. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Splits `host:port` (IPv6 hosts in brackets). Settings are validated at start, so a bad value is a bug. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m) throw new Error(`"${listen}" is not host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

/** Listens on `listen`; resolves with the bound port (port 0 picks one), rejects when it cannot listen. */
export async function listenOn(server: Server, listen: string): Promise<number> {
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
