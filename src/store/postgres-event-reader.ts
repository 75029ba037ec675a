/**
 * The PostgreSQL store's event feed: commit listeners are fed from the event table, never from a
 * commit itself, so every replica emits every replica's events in the same global order.
 *
 * One dedicated connection LISTENs on workflow_events; a notification (or a poll every `pollMs`,
 * or reconnecting that connection) wakes a single reader that reads `revision > last emitted` in
 * ascending order and emits the rows to listeners. Because of the counter row lock (see
 * postgres-store.ts), a revision visible in the table implies every lower revision is committed
 * and visible too, so a read returns a gap-free run; a gap is treated as an invariant broken by
 * someone else (rows deleted by hand): the reader reports it and stops there.
 *
 * Commits never wait for this reader: a call is answered when its COMMIT succeeds, and its event
 * reaches the listeners on this path, shortly after (a local commit wakes the reader at once).
 */
import pg from "pg";
import type { CustomTypesConfig } from "pg";
import type { InstanceEvent } from "../engine/types.js";
import type { CommitListeners } from "./commit-listeners.js";
import { EVENTS_CHANNEL } from "./postgres-migrations.js";
import { EVENT_COLUMNS, eventFromRow, type EventRow } from "./rows.js";

export interface EventReaderOptions {
  url: string;
  types: CustomTypesConfig;
  connectTimeoutMs: number;
  /** How often the event table is read even without a notification. */
  pollMs: number;
  /** Rows per read of the event table. */
  pageSize: number;
  onStoreError: (err: unknown) => void;
}

export class EventReader {
  /** Highest revision given to the listeners (or passed over while there were none). */
  private emitted = 0;
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private listenClient: pg.Client | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = 100;
  private reconnects = 0;
  private gapReported = 0;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly listeners: CommitListeners,
    private readonly options: EventReaderOptions,
  ) {}

  /** Starts after `head` (the committed revision now): opens the LISTEN connection and the poll. */
  async start(head: number): Promise<void> {
    this.emitted = head;
    await this.connectListener();
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref();
  }

  get stats(): { emittedRevision: number; listening: boolean; listenerReconnects: number } {
    return { emittedRevision: this.emitted, listening: this.listenClient !== undefined, listenerReconnects: this.reconnects };
  }

  /** The LISTEN connection's backend pid (tests terminate it to prove the reconnect). */
  get listenerPid(): number | undefined {
    return (this.listenClient as unknown as { processID?: number } | undefined)?.processID;
  }

  /**
   * A commit made here reached `revision`. With listeners, the reader goes to fetch it; with none,
   * the mark just moves on (every lower revision is committed: a listener registered from now on
   * only wants later ones).
   */
  committed(revision: number): void {
    if (this.listeners.size === 0) {
      if (revision > this.emitted) this.emitted = revision;
      return;
    }
    if (revision > this.emitted) this.wake();
  }

  /** Asks the reader to look at the event table (again, if it is reading now). */
  wake(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
    });
  }

  private async pump(): Promise<void> {
    do {
      this.pumpAgain = false;
      try {
        await this.readAndEmit();
      } catch (err) {
        if (!this.closed) this.options.onStoreError(err);
      }
    } while (this.pumpAgain && !this.closed);
  }

  /** One read of the event table; emits the gap-free run after `emitted`. */
  private async readAndEmit(): Promise<void> {
    if (this.listeners.size === 0) {
      // Nobody to tell: just follow the committed head, so the first listener starts near it.
      const { rows } = await this.pool.query<{ revision: number }>("SELECT revision FROM counters");
      const head = rows[0]?.revision ?? 0;
      if (this.listeners.size !== 0) this.pumpAgain = true; // one arrived meanwhile: read the rows instead
      else if (head > this.emitted) this.emitted = head;
      return;
    }
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE revision > $1 ORDER BY revision LIMIT $2`,
      [this.emitted, this.options.pageSize],
    );
    if (rows.length === this.options.pageSize) this.pumpAgain = true;
    // `emitted` may have moved on during the read (a commit made here while nobody listened).
    const batch: InstanceEvent[] = [];
    let next = this.emitted + 1;
    for (const row of rows) {
      if (row.revision < next) continue;
      if (row.revision > next) {
        this.pumpAgain = false; // not in a tight loop: the next poll or commit looks again
        this.reportGap(next, row.revision);
        break;
      }
      batch.push(eventFromRow(row));
      next++;
    }
    if (batch.length > 0) {
      this.emitted = next - 1;
      this.listeners.emit(batch);
    }
  }

  private reportGap(missing: number, found: number): void {
    // Cannot happen through this store; say so loudly, at most every 10 s.
    const now = Date.now();
    if (now - this.gapReported < 10_000) return;
    this.gapReported = now;
    this.options.onStoreError(
      new Error(`store: event revision ${missing} is missing while ${found} exists; watchers on this replica wait at ${missing - 1}`),
    );
  }

  // ---------------------------------------------------------------- LISTEN connection

  private async connectListener(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      keepAlive: true,
      application_name: "workflow-engine listen",
      types: this.options.types,
    });
    client.on("notification", (msg) => {
      if (msg.channel !== EVENTS_CHANNEL) return;
      // The payload is the committed revision: already emitted means nothing new to read.
      const revision = Number(msg.payload);
      if (Number.isSafeInteger(revision) && revision <= this.emitted) return;
      if (this.listeners.size > 0) this.wake();
    });
    client.on("error", (err) => {
      if (!this.closed) this.options.onStoreError(err);
      this.listenerLost(client);
    });
    client.on("end", () => this.listenerLost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.listenClient = client;
    this.reconnectDelayMs = 100;
  }

  private listenerLost(client: pg.Client): void {
    if (client !== this.listenClient) return;
    this.listenClient = undefined;
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  /** Retries with backoff (100 ms doubling to 5 s); the poll keeps listeners fed meanwhile. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(5_000, delay * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connectListener().then(
        () => {
          this.reconnects++;
          // Notifications sent while disconnected are lost: read the table now.
          this.wake();
        },
        (err: unknown) => {
          if (this.closed) return;
          this.options.onStoreError(err);
          this.scheduleReconnect();
        },
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Stops the poll and the LISTEN connection and waits for a read in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listen = this.listenClient;
    this.listenClient = undefined;
    await listen?.end().catch(() => {});
    await this.pumping?.catch(() => {});
  }
}
