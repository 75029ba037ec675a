/**
 * Database failures as operators count them: every failure a SQL store reports (the calls it
 * failed with STORE_UNAVAILABLE, its LISTEN connection, its event reader) is counted by kind, a
 * small fixed set so a metric label stays bounded whatever the driver says, and told to
 * listeners (readiness probes the store at once, src/ops/store-readiness.ts).
 */
export const STORE_ERROR_KINDS = [
  "connection",
  "timeout",
  "disk_full",
  "io",
  "busy",
  "read_only",
  "resources",
  "corrupt",
  "other",
] as const;

export type StoreErrorKind = (typeof STORE_ERROR_KINDS)[number];

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** The kind of a SQLite (SQLITE_*) or PostgreSQL (SQLSTATE, socket errno, pg-pool message) failure. */
export function storeErrorKind(err: unknown): StoreErrorKind {
  const code = codeOf(err);
  if (code.startsWith("SQLITE_")) {
    if (code === "SQLITE_FULL") return "disk_full";
    if (code.startsWith("SQLITE_IOERR")) return "io";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "busy";
    if (/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) return "read_only";
    if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return "corrupt";
    return "other";
  }
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code)) return "connection";
  if (code === "ETIMEDOUT") return "timeout";
  if (/^(08|57P0[1-3])/.test(code)) return "connection"; // connection exception, shutdown, cannot connect now
  if (code === "57014" || code === "55P03") return "timeout"; // statement_timeout, lock_timeout
  if (code === "40P01" || code === "40001") return "busy"; // deadlock, serialization failure
  if (code === "53100") return "disk_full";
  if (code.startsWith("53")) return "resources"; // out of memory, too many connections
  if (code === "58030") return "io";
  if (code === "25006") return "read_only"; // a standby, or default_transaction_read_only
  if (code === "XX001" || code === "XX002") return "corrupt";
  const message = err instanceof Error ? err.message : String(err);
  if (/timeout/i.test(message)) return "timeout"; // pg-pool: "timeout exceeded when trying to connect"
  if (/connection (terminated|ended|closed)|not queryable|Client has encountered a connection error/i.test(message)) return "connection";
  return "other";
}

export type StoreErrorListener = (err: unknown, kind: StoreErrorKind) => void;

export class StoreErrors {
  private readonly counts = new Map<StoreErrorKind, number>();
  private readonly listeners = new Set<StoreErrorListener>();

  /** `report` is the store's onStoreError option (the throttled log), called after counting. */
  constructor(private readonly report: (err: unknown) => void = () => {}) {}

  /** Counts a failure, tells the listeners, then the reporter. Never throws. */
  readonly record = (err: unknown): void => {
    const kind = storeErrorKind(err);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    for (const listener of this.listeners) {
      try {
        listener(err, kind);
      } catch {
        // A listener's failure must not hide the store's.
      }
    }
    this.report(err);
  };

  /** Failures so far, by kind (only kinds seen). */
  byKind(): [StoreErrorKind, number][] {
    return [...this.counts.entries()];
  }

  /** Registers a listener; returns the function that removes it. */
  onError(listener: StoreErrorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
