/**
 * Test certificates made with openssl (Debian's) at run time in a temporary directory: a CA, a
 * server certificate for localhost / 127.0.0.1, a second server certificate (for reload tests), a
 * client certificate, and a key that matches none of them. Nothing secret is committed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second server identity signed by the same CA. */
  otherServerCert: string;
  otherServerKey: string;
  clientCert: string;
  clientKey: string;
  /** A private key that belongs to no certificate here. */
  strayKey: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args.join(" ")} failed (apt-get install -y openssl): ${(err as Error).message}\n${stderr}`);
  }
}

/** Writes a key and a certificate signed by the CA in `dir`. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-subj", subject, "-out", `${name}.csr`]);
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.pem`,
  ]);
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(path.join(tmpdir(), "workflow-certs-"));
  openssl(dir, [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
    "-days", "2", "-subj", "/CN=workflow test CA",
  ]);
  const serverExt = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
  issue(dir, "server", "/CN=localhost", serverExt);
  issue(dir, "server2", "/CN=localhost (second)", serverExt);
  issue(dir, "client", "/CN=ci-client", "extendedKeyUsage=clientAuth\n");
  openssl(dir, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "stray.key"]);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p("ca.pem"),
    serverCert: p("server.pem"),
    serverKey: p("server.key"),
    otherServerCert: p("server2.pem"),
    otherServerKey: p("server2.key"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
    strayKey: p("stray.key"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
