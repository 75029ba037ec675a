// Proves who and why on every change (issue 12.1) through real servers on the memory, SQLite and PostgreSQL stores: the comment and payload of StartInstance and ExecuteAction come back identically in the response, GetInstance, ListInstanceHistory, WatchInstance and WatchInstances; the actor is the static token's name or the JWT's subject ("" without authentication); notes survive a restart; the limits are INVALID_ARGUMENT with field violations; a request_id binds the note; rows written by the previous schema read back with empty notes, take new transitions and have their path counts (action, from state) filled in by the migration that added them.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { exportSPKI, generateKeyPair, SignJWT, type KeyLike } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Struct } from "../../src/gen/google/protobuf/struct.js";
import type { HistoryEntry } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstanceResponse, WatchInstancesResponse, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { parseTokenGrants } from "../../src/grpc/auth.js";
import { JwtVerifier } from "../../src/grpc/jwt.js";
import { MIGRATIONS as POSTGRES_MIGRATIONS } from "../../src/store/postgres-migrations.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { MIGRATIONS as SQLITE_MIGRATIONS } from "../../src/store/sqlite-migrations.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { reviewDefinition } from "../support/definitions.js";
import type { TestDatabase } from "../support/postgres.js";
import { bearer, api, apiWithToken, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { DURABLE_STORE_KINDS, freshDatabase, freshSqliteDir, STORE_KINDS, storePlace, type StorePlace } from "../support/store-places.js";
import { StreamRecorder } from "../watch/watch-support.js";

const ALICE = "alice-token-0123456789";
const BOB = "bob-token-0123456789ab";
const READER = "reader-token-0123456789";
const TOKENS = `alice:${ALICE}=writer,bob:${BOB}=writer,robot:${READER}=reader`;
const ISSUER = "https://issuer.audit.test";
const AUDIENCE = "workflow";
const CAROL = "carol@example.com";

/** Everything a Struct can hold: nesting, lists, null, booleans, unicode (keys too), numbers at the edges of a double. */
const PAYLOAD = {
  ticket: "OPS-1234",
  amount: 1234.5,
  count: 42,
  negative: -17,
  precise: 0.1 + 0.2,
  tiny: 5e-324,
  huge: 1.7976931348623157e308,
  approved: true,
  escalated: false,
  missing: null,
  unicode: "héllo wörld ✓ — 日本語 😀 \u200b",
  "ключ with spaces / ünïcode 🔑": "value",
  "": "the empty key",
  nested: { level1: { level2: { level3: ["deep", 1, false, null, { x: [] }] } } },
  list: [1, "two", null, true, [3, [4, [5]]], { five: 5 }],
  emptyObject: {},
  emptyList: [],
  emptyString: "",
};
const COMMENT = "Escalated by the on-call engineer — see OPS-1234 ✓ 日本語 😀\nsecond line\ttab";

/** Every entry field a client sees; payload normalized so an absent payload and `undefined` compare equal. */
const entryView = (e: HistoryEntry) => ({ ...e, payload: e.payload ?? undefined, migration: e.migration ?? undefined });

/** The encoded size of a payload as the generated client sends it (google.protobuf.Struct). */
const encodedSize = (payload: Record<string, unknown>): number => Struct.encode(Struct.wrap(payload)).finish().length;

/** `payload` padded with a string field so that it encodes to exactly `bytes`. */
function payloadOfSize(bytes: number, base: Record<string, unknown> = {}): Record<string, unknown> {
  for (let n = Math.max(0, bytes - encodedSize(base) - 16); n <= bytes; n++) {
    const p = { ...base, pad: "x".repeat(n) };
    const size = encodedSize(p);
    if (size === bytes) return p;
    if (size > bytes) break;
  }
  // Varint lengths can jump a byte: make up the difference with a second small field.
  for (let n = Math.max(0, bytes - encodedSize(base) - 32); n <= bytes; n++) {
    for (let m = 0; m < 4; m++) {
      const p = { ...base, pad: "x".repeat(n), q: "y".repeat(m) };
      if (encodedSize(p) === bytes) return p;
    }
  }
  throw new Error(`no payload of exactly ${bytes} bytes`);
}

/** `levels` objects nested in each other (the payload itself is the first). */
function nestedObjects(levels: number): Record<string, unknown> {
  let inner: Record<string, unknown> = { leaf: "bottom" };
  for (let i = 1; i < levels; i++) inner = { a: inner };
  return inner;
}

let jwtDir: string;
let rsa: { publicKey: KeyLike; privateKey: KeyLike };

async function jwtFor(subject: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ["writer"] })
    .setProtectedHeader({ alg: "RS256" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(subject)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + 600)
    .sign(rsa.privateKey);
}

beforeAll(async () => {
  jwtDir = mkdtempSync(join(tmpdir(), "workflow-audit-jwt-"));
  rsa = await generateKeyPair("RS256");
  writeFileSync(join(jwtDir, "public.pem"), await exportSPKI(rsa.publicKey));
});
afterAll(() => rmSync(jwtDir, { recursive: true, force: true }));

/** A server with static tokens (alice, bob, a reader) and JWTs (carol) on `place`. */
async function authServer(place: StorePlace): Promise<TestServer> {
  return startTestServer({
    store: await place.open(),
    authTokens: parseTokenGrants(TOKENS),
    jwt: new JwtVerifier({ publicKeyFile: join(jwtDir, "public.pem"), issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles" }),
  });
}

describe.each(STORE_KINDS)("comment, payload and actor (%s store)", (kind) => {
  let place: StorePlace;
  let ts: TestServer;
  let alice: Api;
  let bob: Api;
  let carol: Api;
  let carolToken: string;

  beforeAll(async () => {
    place = await storePlace(kind);
    ts = await authServer(place);
    alice = apiWithToken(ts.client, ALICE);
    bob = apiWithToken(ts.client, BOB);
    carolToken = await jwtFor(CAROL);
    carol = apiWithToken(ts.client, carolToken);
    await alice.createDefinition({ definition: reviewDefinition() });
  });
  afterAll(async () => {
    await ts?.close();
  });

  const watchOne = (client: WorkflowServiceClient, instanceId: string, startVersion: number, token = BOB) =>
    new StreamRecorder<WatchInstanceResponse>(client.watchInstance({ instanceId, startVersion }, bearer(token)));
  const watchAll = (client: WorkflowServiceClient, startRevision: number, token = READER) =>
    new StreamRecorder<WatchInstancesResponse>(client.watchInstances({ definitionId: "review", startRevision }, bearer(token)));

  let recorded: HistoryEntry[] = [];

  it("StartInstance and ExecuteAction notes come back identically everywhere, with the caller as actor", async () => {
    const all = watchAll(ts.client, 0);
    await all.waitFor(() => all.messages.some((m) => m.progress), "WatchInstances live");

    const started = await alice.startInstance({ definitionId: "review", instanceId: "note-1", comment: COMMENT, payload: PAYLOAD });
    expect(started.transition).toMatchObject({ version: 1, actor: "alice", comment: COMMENT, toState: "draft" });
    expect(started.transition!.payload).toEqual(PAYLOAD);

    // From version 1: a replay out of the store, then live events.
    const one = watchOne(ts.client, "note-1", 1);
    await one.waitForCount(1);

    const submitted = await bob.executeAction({ instanceId: "note-1", actionId: "submit", comment: "ready for review", payload: { pages: 12, tags: ["a", "b"] } });
    expect(submitted.transition).toMatchObject({ version: 2, actor: "bob", comment: "ready for review", actionId: "submit" });
    expect(submitted.transition!.payload).toEqual({ pages: 12, tags: ["a", "b"] });
    // No note at all: empty comment, no payload; the JWT's subject is the actor.
    const changes = await carol.executeAction({ instanceId: "note-1", actionId: "request_changes" });
    expect(changes.transition).toMatchObject({ version: 3, actor: CAROL, comment: "" });
    expect(changes.transition!.payload).toBeUndefined();
    // A payload without a comment.
    const resubmitted = await alice.executeAction({ instanceId: "note-1", actionId: "resubmit", payload: PAYLOAD });
    expect(resubmitted.transition).toMatchObject({ version: 4, actor: "alice", comment: "" });
    expect(resubmitted.transition!.payload).toEqual(PAYLOAD);

    const expected = [started.transition!, submitted.transition!, changes.transition!, resubmitted.transition!].map(entryView);
    recorded = expected;
    const view = await bob.getInstance({ instanceId: "note-1" });
    expect(view.recentHistory.map(entryView)).toEqual(expected);
    const history = await apiWithToken(ts.client, READER).listInstanceHistory({ instanceId: "note-1" });
    expect(history.entries.map(entryView)).toEqual(expected);

    await one.waitForCount(4);
    expect(one.events.map((e) => e.entry!).map(entryView)).toEqual(expected);
    await all.waitFor(() => all.events.length >= 4, "4 WatchInstances events");
    expect(all.events.map((e) => e.entry!).map(entryView)).toEqual(expected);
    // The same out of the store: a WatchInstances replay from the start's revision, a WatchInstance snapshot.
    const replay = watchAll(ts.newClient(), all.events[0]!.revision);
    await replay.waitFor(() => replay.events.length >= 4, "4 replayed events");
    expect(replay.events.map((e) => e.entry!).map(entryView)).toEqual(expected);
    const snapshot = watchOne(ts.client, "note-1", 0);
    await snapshot.waitForCount(1);
    expect(entryView(snapshot.events[0]!.entry!)).toEqual(expected[3]);
    for (const rec of [all, one, replay, snapshot]) rec.cancel();
  });

  it("a reader cannot write, so it never becomes an actor", async () => {
    const refused = await rejection(apiWithToken(ts.client, READER).executeAction({ instanceId: "note-1", actionId: "submit", comment: "x" }));
    expect(refused.code).toBe(Status.PERMISSION_DENIED);
    expect((await bob.getInstance({ instanceId: "note-1" })).instance!.version).toBe(4);
  });

  it("without authentication the actor is empty", async () => {
    const open = await startTestServer({ store: await (await storePlace(kind)).open() });
    try {
      const rpc = api(open.client);
      await rpc.createDefinition({ definition: reviewDefinition() });
      const started = await rpc.startInstance({ definitionId: "review", instanceId: "anon", comment: "no one", payload: { k: 1 } });
      const moved = await rpc.executeAction({ instanceId: "anon", actionId: "submit", comment: "still no one" });
      const history = await rpc.listInstanceHistory({ instanceId: "anon" });
      expect(history.entries.map((e) => [e.actor, e.comment, e.payload])).toEqual([
        ["", "no one", { k: 1 }],
        ["", "still no one", undefined],
      ]);
      expect(history.entries.map(entryView)).toEqual([started.transition!, moved.transition!].map(entryView));
    } finally {
      await open.close();
    }
  });

  describe("limits, as INVALID_ARGUMENT with field violations", () => {
    let n = 0;
    /** A fresh instance in draft (so submit is allowed). */
    const fresh = async () => (await alice.startInstance({ definitionId: "review", instanceId: `lim-${++n}` })).instance!.id;

    async function expectViolation(call: Promise<unknown>, field: string, description?: RegExp) {
      const err = await rejection(call);
      expect(err.code, err.message).toBe(Status.INVALID_ARGUMENT);
      expect(err.errorInfo?.reason).toBe("INVALID_REQUEST");
      expect(err.badRequest?.fieldViolations.map((v) => v.field)).toEqual([field]);
      if (description) expect(err.badRequest!.fieldViolations[0]!.description).toMatch(description);
    }

    it("comment: 1,000 characters accepted (1,000 emoji too: characters are code points), 1,001 refused", async () => {
      const ascii = "a".repeat(1000);
      const emoji = "😀".repeat(1000); // 2,000 UTF-16 units
      const s1 = await alice.startInstance({ definitionId: "review", instanceId: `lim-${++n}`, comment: ascii });
      expect(s1.transition!.comment).toBe(ascii);
      const e1 = await alice.executeAction({ instanceId: s1.instance!.id, actionId: "submit", comment: emoji });
      expect(e1.transition!.comment).toBe(emoji);
      const history = await alice.listInstanceHistory({ instanceId: s1.instance!.id });
      expect(history.entries.map((e) => e.comment)).toEqual([ascii, emoji]);

      const id = await fresh();
      await expectViolation(alice.startInstance({ definitionId: "review", comment: "a".repeat(1001) }), "comment", /1000 characters/);
      await expectViolation(alice.startInstance({ definitionId: "review", comment: "😀".repeat(1001) }), "comment", /got 1001/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", comment: "a".repeat(1001) }), "comment");
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", comment: "😀".repeat(1001) }), "comment");
      expect((await alice.getInstance({ instanceId: id })).instance!.version).toBe(1);
    });

    it("payload: exactly 16,384 encoded bytes accepted and returned whole, 16,385 refused", async () => {
      const limit = payloadOfSize(16384);
      const over = payloadOfSize(16385);
      // The same bytes with every kind of value (the server computes the size from the JSON form).
      const richLimit = payloadOfSize(16384, PAYLOAD);
      const richOver = payloadOfSize(16385, PAYLOAD);
      expect([encodedSize(limit), encodedSize(over), encodedSize(richLimit), encodedSize(richOver)]).toEqual([16384, 16385, 16384, 16385]);

      const s = await alice.startInstance({ definitionId: "review", instanceId: `lim-${++n}`, payload: limit });
      expect(s.transition!.payload).toEqual(limit);
      const e = await alice.executeAction({ instanceId: s.instance!.id, actionId: "submit", payload: richLimit });
      expect(e.transition!.payload).toEqual(richLimit);
      expect((await alice.listInstanceHistory({ instanceId: s.instance!.id })).entries.map((x) => x.payload)).toEqual([limit, richLimit]);

      const id = await fresh();
      await expectViolation(alice.startInstance({ definitionId: "review", payload: over }), "payload", /16384 bytes/);
      await expectViolation(alice.startInstance({ definitionId: "review", payload: richOver }), "payload", /got 16385/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: over }), "payload");
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: richOver }), "payload");
    });

    it("payload numbers must be finite: NaN and Infinity (possible in the binary encoding) are refused by path", async () => {
      const id = await fresh();
      await expectViolation(alice.startInstance({ definitionId: "review", payload: { x: NaN } }), "payload.x", /finite/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: { ok: 1, x: NaN } }), "payload.x");
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: { a: { b: [1, 2, Infinity] } } }), "payload.a.b[2]");
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: { m: -Infinity } }), "payload.m");
      expect((await alice.getInstance({ instanceId: id })).instance!.version).toBe(1);
    });

    it("payload nesting: 32 levels accepted, 33 refused at the path of the level too deep; far deeper is INVALID_ARGUMENT too", async () => {
      const deepest = nestedObjects(32);
      const s = await alice.startInstance({ definitionId: "review", instanceId: `lim-${++n}`, payload: deepest });
      expect(s.transition!.payload).toEqual(deepest);
      // Lists count as levels too: the payload, then 31 lists.
      let list: unknown = ["bottom"];
      for (let i = 2; i < 32; i++) list = [list];
      const e = await alice.executeAction({ instanceId: s.instance!.id, actionId: "submit", payload: { l: list } });
      expect(e.transition!.payload).toEqual({ l: list });

      const id = await fresh();
      await expectViolation(alice.startInstance({ definitionId: "review", payload: nestedObjects(33) }), `payload${".a".repeat(32)}`, /32 levels/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: { l: [list] } }), `payload.l${"[0]".repeat(31)}`);
      for (const levels of [34, 40, 200]) {
        const err = await rejection(alice.executeAction({ instanceId: id, actionId: "submit", payload: nestedObjects(levels) }));
        expect(err.code, `${levels} levels: ${err.message}`).toBe(Status.INVALID_ARGUMENT);
      }
      expect((await alice.getInstance({ instanceId: id })).instance!.version).toBe(1);
    });

    it("U+0000, which PostgreSQL cannot store, is refused on every store: in the comment, a payload string or a payload key", async () => {
      const id = await fresh();
      await expectViolation(alice.startInstance({ definitionId: "review", comment: "a\u0000b" }), "comment", /U\+0000/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", comment: "\u0000" }), "comment", /U\+0000/);
      await expectViolation(alice.executeAction({ instanceId: id, actionId: "submit", payload: { a: { s: ["ok", "x\u0000"] } } }), "payload.a.s[1]", /U\+0000/);
      await expectViolation(alice.startInstance({ definitionId: "review", payload: { a: { "k\u0000": 1 } } }), "payload.a", /key .*U\+0000/);
      expect((await alice.getInstance({ instanceId: id })).instance!.version).toBe(1);
      // Every other control character is kept as sent.
      const controls = "\u0001\u001f\u007f\t\n\r";
      const kept = await alice.executeAction({ instanceId: id, actionId: "submit", comment: controls, payload: { [controls]: controls } });
      expect((await alice.listInstanceHistory({ instanceId: id })).entries[1]).toMatchObject({ comment: controls, payload: { [controls]: controls } });
      expect(kept.transition).toMatchObject({ comment: controls, payload: { [controls]: controls } });
    });

    it("every violation of one request at once: comment and payload", async () => {
      const err = await rejection(alice.startInstance({ definitionId: "review", comment: "a".repeat(1001), payload: { x: NaN } }));
      expect(err.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["comment", "payload.x"]);
    });
  });

  describe("request_id binds the comment and the payload", () => {
    it("StartInstance: a retry with the same note returns the original; another note is REQUEST_ID_REUSED", async () => {
      for (const instanceId of ["rid-start", ""]) {
        const requestId = `start-note-${instanceId || "generated"}`;
        const request = { definitionId: "review", instanceId, requestId, comment: "first", payload: { a: 1, b: [true, null] } };
        const first = await alice.startInstance(request);
        expect(first.created).toBe(true);
        const again = await alice.startInstance(request);
        expect(again).toEqual({ ...first, created: false });
        // The same payload with its keys in another order is the same request.
        const reordered = await alice.startInstance({ ...request, payload: { b: [true, null], a: 1 } });
        expect(reordered).toEqual({ ...first, created: false });
        for (const other of [{ comment: "second" }, { comment: "" }, { payload: { a: 2, b: [true, null] } }, { payload: undefined }]) {
          const err = await rejection(alice.startInstance({ ...request, ...other }));
          expect(err.code, JSON.stringify(other)).toBe(Status.ALREADY_EXISTS);
          expect(err.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
        }
      }
    });

    it("ExecuteAction: a retry returns the original even after the instance moved on; another note is REQUEST_ID_REUSED", async () => {
      await alice.startInstance({ definitionId: "review", instanceId: "rid-exec" });
      const request = { instanceId: "rid-exec", actionId: "submit", requestId: "exec-note", comment: "why", payload: { n: 1.5 } };
      const first = await bob.executeAction(request);
      await bob.executeAction({ instanceId: "rid-exec", actionId: "request_changes" });
      // Another caller retrying the same request gets the original, with the original actor.
      const again = await alice.executeAction(request);
      expect(again).toEqual(first);
      expect(again.transition!.actor).toBe("bob");
      for (const other of [{ comment: "why not" }, { comment: "" }, { payload: { n: 2 } }, { payload: {} }, { payload: undefined }]) {
        const err = await rejection(bob.executeAction({ ...request, ...other }));
        expect(err.errorInfo?.reason, JSON.stringify(other)).toBe("REQUEST_ID_REUSED");
      }
      expect((await bob.getInstance({ instanceId: "rid-exec" })).instance!.version).toBe(3);
    });
  });

  if (kind !== "memory") {
    it("notes, actors and request_ids survive a restart on the same data", async () => {
      const before = await alice.listInstanceHistory({ instanceId: "note-1" });
      const retried = await alice.executeAction({ instanceId: "rid-exec", actionId: "submit", requestId: "exec-note", comment: "why", payload: { n: 1.5 } });
      await ts.close();
      ts = await authServer(place);
      alice = apiWithToken(ts.client, ALICE);
      bob = apiWithToken(ts.client, BOB);

      const after = await alice.listInstanceHistory({ instanceId: "note-1" });
      expect(after.entries.map(entryView)).toEqual(before.entries.map(entryView));
      expect(after.entries.map(entryView)).toEqual(recorded);
      expect((await bob.getInstance({ instanceId: "note-1" })).recentHistory.map(entryView)).toEqual(recorded);
      const one = watchOne(ts.client, "note-1", 1);
      await one.waitForCount(4);
      expect(one.events.map((e) => entryView(e.entry!))).toEqual(recorded);
      one.cancel();
      expect(await alice.executeAction({ instanceId: "rid-exec", actionId: "submit", requestId: "exec-note", comment: "why", payload: { n: 1.5 } })).toEqual(
        retried,
      );
      const reused = await rejection(alice.executeAction({ instanceId: "rid-exec", actionId: "submit", requestId: "exec-note", comment: "other" }));
      expect(reused.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
      // And the instance goes on, recording its new notes.
      const next = await apiWithToken(ts.client, await jwtFor(CAROL)).executeAction({ instanceId: "note-1", actionId: "publish", comment: "after restart" });
      expect(next.transition).toMatchObject({ version: 5, actor: CAROL, comment: "after restart" });
    });
  }
});

describe.each(DURABLE_STORE_KINDS)("rows written before notes existed (%s store, previous schema)", (kind) => {
  const T0 = Date.parse("2024-05-01T10:00:00.000Z");
  const def = reviewDefinition();
  const body = JSON.stringify({ name: def.name, description: def.description, states: def.states, actions: def.actions });
  // The fingerprint the previous build recorded for ExecuteAction (no comment, no payload).
  const oldFingerprint = JSON.stringify(["execute", "old-1", "submit", 0]);

  /** SQLite at schema version 2, with one instance at version 3 written with migration 1's columns. */
  function sqliteAtVersion2(): string {
    const dir = freshSqliteDir();
    const db = new Database(join(dir, "workflow.db"));
    try {
      db.pragma("journal_mode = WAL");
      // Exactly what migrate() does, for the migrations the previous build had.
      db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL)");
      const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)");
      for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= 2)) {
        db.transaction(() => {
          db.exec(m.sql);
          record.run(m.version, m.name, Date.now());
        }).immediate();
      }
      db.prepare("INSERT INTO definitions (id, version, body, create_time) VALUES (?, ?, ?, ?)").run("review", 1, body, T0);
      db.prepare(
        "INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ).run("old-1", "review", 1, "changes_requested", "active", 3, T0 + 1, T0 + 3);
      const event = db.prepare(
        "INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time, action_id, from_state, to_state, time, request_id) " +
          "VALUES (?, ?, 'old-1', 'review', 1, ?, 'active', ?, ?, ?, ?, ?, ?)",
      );
      event.run(1, "started", 1, T0 + 1, "", "", "draft", T0 + 1, "old-start");
      event.run(2, "transitioned", 2, T0 + 1, "submit", "draft", "in_review", T0 + 2, "old-submit");
      event.run(3, "transitioned", 3, T0 + 1, "request_changes", "in_review", "changes_requested", T0 + 3, "");
      db.prepare("INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (?, ?, ?, ?)").run("old-submit", oldFingerprint, 2, T0 + 2);
      db.prepare("UPDATE counters SET value = 1 WHERE name = 'instances'").run();
      expect(db.prepare("SELECT max(version) AS v FROM schema_migrations").get()).toEqual({ v: 2 });
    } finally {
      db.close();
    }
    return dir;
  }

  /** PostgreSQL at schema version 4, the instance written by migration 4's commit function (the previous build's). */
  let pgDb: TestDatabase | undefined;
  async function postgresAtVersion4(): Promise<string> {
    const db = await freshDatabase();
    pgDb = db;
    await db.sql("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time TIMESTAMPTZ NOT NULL)");
    for (const m of POSTGRES_MIGRATIONS.filter((x) => x.version <= 4)) {
      await db.sql(m.sql);
      await db.sql("INSERT INTO schema_migrations (version, name, applied_time) VALUES ($1, $2, now())", [m.version, m.name]);
    }
    await db.sql("INSERT INTO definitions (id, version, body, create_time) VALUES ('review', 1, $1::jsonb, $2)", [body, new Date(T0)]);
    const steps: [string, number, string, number, string, string, string, string | null, string | null][] = [
      ["start", 0, "draft", 1, "", "", "old-start", null, null],
      ["transition", 1, "in_review", 2, "submit", "draft", "old-submit", "old-submit", oldFingerprint],
      ["transition", 2, "changes_requested", 3, "request_changes", "in_review", "", null, null],
    ];
    for (const [k, fromVersion, state, version, actionId, fromState, entryRequestId, requestId, fingerprint] of steps) {
      const { rows } = await db.sql(
        "SELECT o_outcome FROM workflow_commit_batch($1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::text[], $7::text[], " +
          "$8::integer[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])",
        [
          [k], ["old-1"], [fromVersion], ["review"], [1], [state], ["active"], [version], [new Date(T0 + 1)], [new Date(T0 + version)],
          [actionId], [fromState], [entryRequestId], [requestId], [fingerprint],
        ],
      );
      expect(rows).toEqual([{ o_outcome: "ok" }]);
    }
    expect((await db.sql("SELECT max(version) AS v FROM schema_migrations")).rows).toEqual([{ v: 4 }]);
    return db.url;
  }

  it("reads them back with an empty actor and comment and no payload or migration, and takes new transitions", async () => {
    const store = kind === "sqlite" ? openSqliteStore({ dataDir: sqliteAtVersion2() }) : await openPostgresStore({ url: await postgresAtVersion4() });
    const ts = await startTestServer({ store });
    try {
      const rpc = api(ts.client);
      const history = await rpc.listInstanceHistory({ instanceId: "old-1" });
      expect(history.entries.map((e) => [e.version, e.actionId, e.toState, e.requestId, e.actor, e.comment, e.payload, e.migration])).toEqual([
        [1, "", "draft", "old-start", "", "", undefined, undefined],
        [2, "submit", "in_review", "old-submit", "", "", undefined, undefined],
        [3, "request_changes", "changes_requested", "", "", "", undefined, undefined],
      ]);
      expect(history.entries.map((e) => e.time!.getTime())).toEqual([T0 + 1, T0 + 2, T0 + 3]);
      const view = await rpc.getInstance({ instanceId: "old-1" });
      expect(view.instance).toMatchObject({ version: 3, currentState: "changes_requested", definitionVersion: 1 });
      expect(view.recentHistory.map(entryView)).toEqual(history.entries.map(entryView));
      // The path counts of rows written before the counts table existed are filled in by its migration.
      expect((await store.instancePath("old-1"))?.counts).toEqual([
        { actionId: "request_changes", fromState: "in_review", count: 1 },
        { actionId: "submit", fromState: "draft", count: 1 },
      ]);
      // The past of an old instance is rebuilt from its old rows.
      expect((await rpc.getInstance({ instanceId: "old-1", asOfVersion: 2 })).instance).toMatchObject({ version: 2, currentState: "in_review" });

      // A request recorded by the previous build is still recognised: same request, original answer.
      const replay = await rpc.executeAction({ instanceId: "old-1", actionId: "submit", requestId: "old-submit" });
      expect(replay.transition).toMatchObject({ version: 2, actionId: "submit", actor: "", comment: "" });
      const reused = await rejection(rpc.executeAction({ instanceId: "old-1", actionId: "submit", requestId: "old-submit", comment: "now with a note" }));
      expect(reused.errorInfo?.reason).toBe("REQUEST_ID_REUSED");

      const next = await rpc.executeAction({ instanceId: "old-1", actionId: "resubmit", comment: "on the new schema", payload: { after: "upgrade" } });
      expect(next.transition).toMatchObject({ version: 4, actionId: "resubmit", comment: "on the new schema", payload: { after: "upgrade" } });
      // A new version of the definition and a migration of the old instance.
      await rpc.createDefinition({ definition: { ...reviewDefinition(), version: 2, description: "v2" } });
      const moved = await rpc.migrateInstance({ instanceId: "old-1", toDefinitionVersion: 2 });
      expect(moved.transition!.migration).toEqual({ fromDefinitionVersion: 1, toDefinitionVersion: 2 });
      const all = await rpc.listInstanceHistory({ instanceId: "old-1" });
      expect(all.entries.map((e) => [e.version, e.comment, e.payload ?? null, e.migration ?? null])).toEqual([
        [1, "", null, null],
        [2, "", null, null],
        [3, "", null, null],
        [4, "on the new schema", { after: "upgrade" }, null],
        [5, "", null, { fromDefinitionVersion: 1, toDefinitionVersion: 2 }],
      ]);
      expect((await rpc.getServiceStats()).instanceCount).toBe(1);
      expect((await store.instancePath("old-1"))?.counts.map((c) => [c.actionId, c.count])).toEqual([
        ["request_changes", 1],
        ["resubmit", 1],
        ["submit", 1],
      ]);

      if (kind === "postgres") {
        // A replica of the previous build during a rolling upgrade: migration 4's function still commits,
        // its rows read back with empty notes, and this build's next write goes on from there.
        const { rows } = await pgDb!.sql(
          "SELECT o_outcome FROM workflow_commit_batch($1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::text[], $7::text[], " +
            "$8::integer[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])",
          [["transition"], ["old-1"], [5], ["review"], [2], ["changes_requested"], ["active"], [6], [new Date(T0 + 1)], [new Date()], ["request_changes"], ["in_review"], [""], [null], [null]],
        );
        expect(rows).toEqual([{ o_outcome: "ok" }]);
        const after = await rpc.executeAction({ instanceId: "old-1", actionId: "resubmit", comment: "new build again" });
        expect(after.transition).toMatchObject({ version: 7, comment: "new build again" });
        const tail = (await rpc.listInstanceHistory({ instanceId: "old-1" })).entries.slice(5);
        expect(tail.map((e) => [e.version, e.actionId, e.actor, e.comment, e.payload ?? null, e.migration ?? null])).toEqual([
          [6, "request_changes", "", "", null, null],
          [7, "resubmit", "", "new build again", null, null],
        ]);
        // Rows the previous build's function writes are counted too (the trigger, not the function, counts).
        expect((await store.instancePath("old-1"))?.counts.map((c) => [c.actionId, c.count])).toEqual([
          ["request_changes", 2],
          ["resubmit", 2],
          ["submit", 1],
        ]);
      }
    } finally {
      await ts.close();
    }
  });
});
