/**
 * TLS and mutual TLS from PEM files (WORKFLOW_TLS_CERT, WORKFLOW_TLS_KEY, optional
 * WORKFLOW_TLS_CLIENT_CA, which makes client certificates required), reloaded without a restart
 * when the files change (polled) or on SIGHUP (main.ts calls reload()). Files that are missing or
 * bad at start are a configuration error; a bad reload keeps serving the previous certificate and
 * logs why.
 *
 * grpc-js re-reads credentials through its CertificateProvider interface
 * (@grpc/grpc-js/experimental): every update here calls setSecureContext on its TLS server, so
 * new connections get the new certificate while open ones keep theirs. The HTTP and metrics
 * listeners are node:https servers made from serverOptions() and kept current by follow(), so one
 * reload (file change or SIGHUP) reaches every listener at once.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createSecureContext, type Server as TlsServer, type TlsOptions } from "node:tls";
import { experimental, type ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";

type CertificateProvider = experimental.CertificateProvider;
type CaCertificateUpdateListener = experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = experimental.IdentityCertificateUpdateListener;

export interface TlsSettings {
  certFile: string;
  keyFile: string;
  /** CA bundle that signs client certificates; set = mutual TLS (client certificates required). */
  clientCaFile?: string;
}

interface Loaded {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** What the log says about the certificate. */
  summary: { subject: string; notAfter: string; fingerprint256: string };
}

function read(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${variable}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certificate(pem: Buffer, file: string, variable: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${variable}: ${file} holds no PEM certificate`);
  }
}

/** Reads and checks the files; throws an Error whose message names the variable, the file and the problem. */
export function loadTlsFiles(settings: TlsSettings): Loaded {
  const cert = read(settings.certFile, "WORKFLOW_TLS_CERT");
  const key = read(settings.keyFile, "WORKFLOW_TLS_KEY");
  const x509 = certificate(cert, settings.certFile, "WORKFLOW_TLS_CERT");
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`WORKFLOW_TLS_KEY: ${settings.keyFile} is not a PEM private key (unencrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new Error(`WORKFLOW_TLS_KEY: ${settings.keyFile} is not the private key of the certificate in ${settings.certFile}`);
  }
  let ca: Buffer | undefined;
  if (settings.clientCaFile) {
    ca = read(settings.clientCaFile, "WORKFLOW_TLS_CLIENT_CA");
    certificate(ca, settings.clientCaFile, "WORKFLOW_TLS_CLIENT_CA");
  }
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new Error(`WORKFLOW_TLS_CERT / WORKFLOW_TLS_KEY: the files do not form a usable TLS identity: ${(err as Error).message}`);
  }
  return { cert, key, ca, summary: { subject: x509.subject, notAfter: x509.validTo, fingerprint256: x509.fingerprint256 } };
}

/** The server's TLS identity (and client CA), as grpc-js certificate providers. */
export class TlsFiles {
  private loaded: Loaded;
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly followers = new Set<TlsServer>();

  /** Throws when the files are missing or bad (see loadTlsFiles). */
  constructor(readonly settings: TlsSettings) {
    this.loaded = loadTlsFiles(settings);
  }

  get summary(): Loaded["summary"] {
    return this.loaded.summary;
  }

  get mutual(): boolean {
    return this.settings.clientCaFile !== undefined;
  }

  /** grpc-js server credentials that follow every reload. */
  credentials(): ServerCredentials {
    const identity: CertificateProvider = {
      // grpc-js registers its own watcher only after adding these listeners: answer on the next tick.
      addIdentityCertificateListener: (l) => {
        this.identityListeners.add(l);
        queueMicrotask(() => l({ certificate: this.loaded.cert, privateKey: this.loaded.key }));
      },
      removeIdentityCertificateListener: (l) => void this.identityListeners.delete(l),
      addCaCertificateListener: () => {},
      removeCaCertificateListener: () => {},
    };
    const ca: CertificateProvider | null = this.mutual
      ? {
          addCaCertificateListener: (l) => {
            this.caListeners.add(l);
            queueMicrotask(() => l({ caCertificate: this.loaded.ca! }));
          },
          removeCaCertificateListener: (l) => void this.caListeners.delete(l),
          addIdentityCertificateListener: () => {},
          removeIdentityCertificateListener: () => {},
        }
      : null;
    // grpc-js takes (identity provider, CA provider or null, require client certificates).
    return experimental.createCertificateProviderServerCredentials(identity, ca as CertificateProvider, this.mutual);
  }

  /**
   * Options for a node:tls / node:https server with the current files: client certificates
   * requested and required (handshake refused without one) when the client CA is set.
   */
  serverOptions(): TlsOptions {
    const { cert, key, ca } = this.loaded;
    return { cert, key, ...(ca ? { ca } : {}), requestCert: this.mutual, rejectUnauthorized: this.mutual };
  }

  /**
   * Keeps a node:tls / node:https server made from serverOptions() on the current files: every
   * reload calls its setSecureContext (new connections get the new files). Stops when it closes.
   */
  follow(server: TlsServer): void {
    this.followers.add(server);
    server.once("close", () => this.followers.delete(server));
  }

  /** Re-reads the files; on success every listener gets them. Throws (keeping the old ones) when they are bad. */
  reload(): Loaded["summary"] {
    const next = loadTlsFiles(this.settings);
    this.loaded = next;
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    for (const server of this.followers) server.setSecureContext({ cert: next.cert, key: next.key, ...(next.ca ? { ca: next.ca } : {}) });
    return next.summary;
  }

  get files(): string[] {
    return [this.settings.certFile, this.settings.keyFile, ...(this.settings.clientCaFile ? [this.settings.clientCaFile] : [])];
  }
}

/**
 * Calls onChange (debounced) when any of the files changes, polling every intervalMs (robust to
 * files replaced by rename and to symlink swaps, as with Kubernetes secrets). Returns the stopper.
 */
export function watchFiles(files: string[], intervalMs: number, onChange: () => void, log: Logger): () => void {
  let debounce: NodeJS.Timeout | undefined;
  const listener = (curr: { mtimeMs: number; ino: number }, prev: { mtimeMs: number; ino: number }) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      try {
        onChange();
      } catch (err) {
        log.error({ err }, "credentials reload failed");
      }
    }, Math.min(200, intervalMs));
    debounce.unref();
  };
  for (const f of files) watchFile(f, { interval: intervalMs, persistent: false }, listener);
  return () => {
    clearTimeout(debounce);
    for (const f of files) unwatchFile(f, listener);
  };
}
