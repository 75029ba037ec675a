/**
 * The PostgreSQL store's schema history, the same tables and indexes as the SQLite store, plus
 * the commit functions. Applied in order at start, all in one transaction under an advisory lock,
 * so replicas starting together apply each migration once. Never edit a released migration; add
 * a new one.
 */
import type { PoolClient } from "pg";
import type { Migration } from "./rows.js";
import { pendingMigrations } from "./sql-common.js";

/** The NOTIFY channel every replica of one database shares. */
export const EVENTS_CHANNEL = "workflow_events";

/** The NOTIFY channel that hints "work may be due" to the workers of every replica (postgres-work-queue.ts). */
export const WORK_CHANNEL = "workflow_work";

/**
 * Namespace of the two-key advisory locks a batch takes on its request_ids, so two replicas
 * committing the same request_id at once are serialized (the second sees the first's record).
 */
export const REQUEST_LOCK_NAMESPACE = 1464;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "definitions, instances, events, requests, counters",
    sql: `
      -- Ids compare byte-wise (COLLATE "C") so ordering and paging match the other stores.
      CREATE TABLE definitions (
        id          TEXT COLLATE "C" NOT NULL,
        version     INTEGER          NOT NULL,
        body        JSONB            NOT NULL, -- name, description, states, actions
        create_time TIMESTAMPTZ      NOT NULL,
        PRIMARY KEY (id, version)
      );

      CREATE TABLE instances (
        id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        definition_id      TEXT COLLATE "C" NOT NULL,
        definition_version INTEGER          NOT NULL,
        current_state      TEXT COLLATE "C" NOT NULL,
        status             TEXT             NOT NULL CHECK (status IN ('active', 'completed')),
        version            INTEGER          NOT NULL,
        create_time        TIMESTAMPTZ      NOT NULL,
        update_time        TIMESTAMPTZ      NOT NULL
      );
      CREATE INDEX instances_by_definition ON instances (definition_id, id);
      CREATE INDEX instances_by_state      ON instances (current_state, id);
      CREATE INDEX instances_by_status     ON instances (status, id);

      -- The event log and every instance's history in one table: a row is the entry plus the
      -- instance snapshot after it (current_state = to_state, update_time = time).
      CREATE TABLE events (
        revision           BIGINT           NOT NULL PRIMARY KEY,
        type               TEXT             NOT NULL CHECK (type IN ('started', 'transitioned')),
        instance_id        TEXT COLLATE "C" NOT NULL,
        definition_id      TEXT COLLATE "C" NOT NULL,
        definition_version INTEGER          NOT NULL,
        version            INTEGER          NOT NULL,
        status             TEXT             NOT NULL CHECK (status IN ('active', 'completed')),
        create_time        TIMESTAMPTZ      NOT NULL,
        action_id          TEXT             NOT NULL,
        from_state         TEXT             NOT NULL,
        to_state           TEXT             NOT NULL,
        time               TIMESTAMPTZ      NOT NULL,
        request_id         TEXT             NOT NULL
      );
      CREATE UNIQUE INDEX events_by_instance   ON events (instance_id, version);
      CREATE INDEX        events_by_definition ON events (definition_id, revision);

      -- request_id -> the event its request produced (the response is rebuilt from that row).
      CREATE TABLE requests (
        request_id  TEXT        NOT NULL PRIMARY KEY,
        fingerprint TEXT        NOT NULL,
        revision    BIGINT      NOT NULL,
        time        TIMESTAMPTZ NOT NULL
      );

      -- One row: the latest revision and the instance counts. Every write transaction updates it,
      -- which serializes commits and makes revision order equal commit order (see the file header).
      CREATE TABLE counters (
        id        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        revision  BIGINT  NOT NULL,
        instances BIGINT  NOT NULL,
        completed BIGINT  NOT NULL
      );
      INSERT INTO counters (id, revision, instances, completed) VALUES (TRUE, 0, 0, 0);
    `,
  },
  {
    version: 2,
    name: "commit functions: one statement, one transaction per write",
    // Each write is one call, so the transaction commits on the server right after the last
    // statement: the counter row lock is never held across a round trip to the client.
    sql: `
      -- The serialized tail of every write: the next revision (locking the counter row until the
      -- transaction ends), the event, the request record, the notification (delivered on commit).
      -- A request_id recorded meanwhile raises unique_violation on requests_pkey: nothing is written.
      CREATE FUNCTION workflow_append_event(
        p_type text, p_instance_id text, p_definition_id text, p_definition_version integer, p_version integer,
        p_status text, p_create_time timestamptz, p_action_id text, p_from_state text, p_to_state text,
        p_time timestamptz, p_entry_request_id text, p_instances_delta integer, p_completed_delta integer,
        p_request_id text, p_fingerprint text
      ) RETURNS bigint LANGUAGE plpgsql AS $fn$
      DECLARE
        v_revision bigint;
      BEGIN
        UPDATE counters
           SET revision = counters.revision + 1,
               instances = counters.instances + p_instances_delta,
               completed = counters.completed + p_completed_delta
        RETURNING counters.revision INTO v_revision;
        INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                            action_id, from_state, to_state, time, request_id)
        VALUES (v_revision, p_type, p_instance_id, p_definition_id, p_definition_version, p_version, p_status, p_create_time,
                p_action_id, p_from_state, p_to_state, p_time, p_entry_request_id);
        IF p_request_id IS NOT NULL THEN
          INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (p_request_id, p_fingerprint, v_revision, p_time);
        END IF;
        PERFORM pg_notify('${EVENTS_CHANNEL}', v_revision::text);
        RETURN v_revision;
      END
      $fn$;

      CREATE FUNCTION workflow_commit_start(
        p_id text, p_definition_id text, p_definition_version integer, p_state text, p_status text,
        p_create_time timestamptz, p_update_time timestamptz,
        p_action_id text, p_from_state text, p_entry_request_id text,
        p_request_id text, p_fingerprint text,
        OUT o_outcome text, OUT o_revision bigint, OUT o_current_version integer
      ) LANGUAGE plpgsql AS $fn$
      BEGIN
        IF p_request_id IS NOT NULL AND EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id) THEN
          o_outcome := 'request_exists';
          RETURN;
        END IF;
        -- Waits for a concurrent insert of the same id, then does nothing: no error, nothing written.
        INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time)
        VALUES (p_id, p_definition_id, p_definition_version, p_state, p_status, 1, p_create_time, p_update_time)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
          o_outcome := 'instance_exists';
          RETURN;
        END IF;
        o_outcome := 'ok';
        o_revision := workflow_append_event(
          'started', p_id, p_definition_id, p_definition_version, 1, p_status, p_create_time,
          p_action_id, p_from_state, p_state, p_update_time, p_entry_request_id,
          1, CASE WHEN p_status = 'completed' THEN 1 ELSE 0 END, p_request_id, p_fingerprint);
      END
      $fn$;

      CREATE FUNCTION workflow_commit_transition(
        p_id text, p_from_version integer, p_definition_id text, p_definition_version integer,
        p_state text, p_status text, p_version integer, p_create_time timestamptz, p_update_time timestamptz,
        p_action_id text, p_from_state text, p_entry_request_id text,
        p_request_id text, p_fingerprint text,
        OUT o_outcome text, OUT o_revision bigint, OUT o_current_version integer
      ) LANGUAGE plpgsql AS $fn$
      DECLARE
        v_before text;
      BEGIN
        IF p_request_id IS NOT NULL AND EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id) THEN
          o_outcome := 'request_exists';
          RETURN;
        END IF;
        -- Compare-and-set. The self-join yields the status before the update (for the completed
        -- count); a concurrent writer that moved the version makes the WHERE fail once it commits.
        UPDATE instances AS i
           SET current_state = p_state, status = p_status, version = p_version, update_time = p_update_time
          FROM instances AS old
         WHERE i.id = p_id AND i.version = p_from_version AND old.id = i.id
        RETURNING old.status INTO v_before;
        IF NOT FOUND THEN
          o_outcome := 'version_conflict';
          SELECT coalesce(max(version), 0) INTO o_current_version FROM instances WHERE id = p_id;
          RETURN;
        END IF;
        o_outcome := 'ok';
        o_revision := workflow_append_event(
          'transitioned', p_id, p_definition_id, p_definition_version, p_version, p_status, p_create_time,
          p_action_id, p_from_state, p_state, p_update_time, p_entry_request_id,
          0, (CASE WHEN p_status = 'completed' THEN 1 ELSE 0 END) - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END),
          p_request_id, p_fingerprint);
      END
      $fn$;
    `,
  },
  {
    version: 3,
    name: "an index for every combination of ListInstances filters",
    // With migration 1's (definition_id, id), (current_state, id) and (status, id), each filter
    // combination has an index that ends in id: a filtered page is a range scan in id order.
    sql: `
      CREATE INDEX instances_by_definition_state        ON instances (definition_id, current_state, id);
      CREATE INDEX instances_by_definition_status       ON instances (definition_id, status, id);
      CREATE INDEX instances_by_state_status            ON instances (current_state, status, id);
      CREATE INDEX instances_by_definition_state_status ON instances (definition_id, current_state, status, id);
    `,
  },
  {
    version: 4,
    name: "group commit: one call, one transaction for a batch of writes",
    // The writes that arrive together on a replica go to the database as one call: arrays, one
    // element per write. No subtransactions (each would cost a subxact, and more than 64 in one
    // transaction slow every session's snapshots): every check comes before anything is written.
    // Lock order, the same on every replica, so two batches never deadlock: the request_ids'
    // advisory locks (sorted), then instance rows in id order (writes are applied sorted by id,
    // stably, so a chain of transitions on one instance keeps its order), then the counter row.
    sql: `
      CREATE FUNCTION workflow_commit_batch(
        p_kind text[], p_id text[], p_from_version integer[], p_definition_id text[], p_definition_version integer[],
        p_state text[], p_status text[], p_version integer[], p_create_time timestamptz[], p_update_time timestamptz[],
        p_action_id text[], p_from_state text[], p_entry_request_id text[], p_request_id text[], p_fingerprint text[]
      ) RETURNS TABLE (o_index integer, o_outcome text, o_revision bigint, o_current_version integer,
                       o_current_state text, o_current_status text, o_current_definition_version integer,
                       o_current_update_time timestamptz)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_n integer := coalesce(array_length(p_id, 1), 0);
        v_order integer[];
        v_ok integer[] := '{}';
        v_used text[] := '{}';
        v_outcome text[];
        v_current integer[];
        v_row instances%ROWTYPE;
        v_current_row instances[];
        v_revision bigint[];
        v_before text;
        v_instances integer := 0;
        v_completed integer := 0;
        v_head bigint;
        v_k integer;
        i integer;
      BEGIN
        IF v_n = 0 THEN
          RETURN;
        END IF;
        v_outcome := array_fill(NULL::text, ARRAY[v_n]);
        v_current := array_fill(NULL::integer, ARRAY[v_n]);
        v_current_row := array_fill(NULL::instances, ARRAY[v_n]);
        v_revision := array_fill(NULL::bigint, ARRAY[v_n]);
        -- A request_id committed meanwhile by another replica is visible once its lock is ours.
        PERFORM pg_advisory_xact_lock(${REQUEST_LOCK_NAMESPACE}, h)
           FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest(p_request_id) AS r WHERE r IS NOT NULL ORDER BY 1) AS locks;
        SELECT array_agg(ord ORDER BY p_id[ord] COLLATE "C", ord) INTO v_order FROM generate_subscripts(p_id, 1) AS ord;
        FOREACH i IN ARRAY v_order LOOP
          IF p_request_id[i] IS NOT NULL THEN
            IF p_request_id[i] = ANY (v_used) OR EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id[i]) THEN
              v_outcome[i] := 'request_exists';
              CONTINUE;
            END IF;
          END IF;
          IF p_kind[i] = 'start' THEN
            -- Waits for a concurrent insert of the same id, then does nothing: nothing written.
            INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time)
            VALUES (p_id[i], p_definition_id[i], p_definition_version[i], p_state[i], p_status[i], 1, p_create_time[i], p_update_time[i])
            ON CONFLICT (id) DO NOTHING;
            IF NOT FOUND THEN
              v_outcome[i] := 'instance_exists';
              CONTINUE;
            END IF;
            v_instances := v_instances + 1;
            IF p_status[i] = 'completed' THEN
              v_completed := v_completed + 1;
            END IF;
          ELSE
            -- Compare-and-set; the self-join yields the status before the update (for the completed count).
            UPDATE instances AS t
               SET current_state = p_state[i], status = p_status[i], version = p_version[i], update_time = p_update_time[i]
              FROM instances AS old
             WHERE t.id = p_id[i] AND t.version = p_from_version[i] AND old.id = t.id
            RETURNING old.status INTO v_before;
            IF NOT FOUND THEN
              -- The instance as stored now, so the caller can validate again without another read.
              v_outcome[i] := 'version_conflict';
              SELECT * INTO v_row FROM instances WHERE id = p_id[i];
              IF FOUND THEN
                v_current[i] := v_row.version;
                v_current_row[i] := v_row;
              ELSE
                v_current[i] := 0;
              END IF;
              CONTINUE;
            END IF;
            v_completed := v_completed + (CASE WHEN p_status[i] = 'completed' THEN 1 ELSE 0 END)
                                       - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END);
          END IF;
          v_outcome[i] := 'ok';
          v_ok := v_ok || i;
          IF p_request_id[i] IS NOT NULL THEN
            v_used := v_used || p_request_id[i];
          END IF;
        END LOOP;
        v_k := coalesce(array_length(v_ok, 1), 0);
        IF v_k > 0 THEN
          -- The serialized tail: the counter row is locked from here to COMMIT, so revisions are
          -- handed out in commit order across replicas.
          UPDATE counters
             SET revision = counters.revision + v_k,
                 instances = counters.instances + v_instances,
                 completed = counters.completed + v_completed
          RETURNING counters.revision INTO v_head;
          FOR j IN 1..v_k LOOP
            v_revision[v_ok[j]] := v_head - v_k + j;
          END LOOP;
          INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                              action_id, from_state, to_state, time, request_id)
          SELECT v_revision[w], CASE WHEN p_kind[w] = 'start' THEN 'started' ELSE 'transitioned' END,
                 p_id[w], p_definition_id[w], p_definition_version[w], p_version[w], p_status[w], p_create_time[w],
                 p_action_id[w], p_from_state[w], p_state[w], p_update_time[w], p_entry_request_id[w]
            FROM unnest(v_ok) AS w;
          INSERT INTO requests (request_id, fingerprint, revision, time)
          SELECT p_request_id[w], p_fingerprint[w], v_revision[w], p_update_time[w]
            FROM unnest(v_ok) AS w WHERE p_request_id[w] IS NOT NULL;
          PERFORM pg_notify('${EVENTS_CHANNEL}', v_head::text);
        END IF;
        RETURN QUERY SELECT ord, v_outcome[ord], v_revision[ord], v_current[ord],
                            (v_current_row[ord]).current_state::text, (v_current_row[ord]).status,
                            (v_current_row[ord]).definition_version, (v_current_row[ord]).update_time
                       FROM generate_subscripts(p_id, 1) AS ord;
      END
      $fn$;
    `,
  },
  {
    version: 5,
    name: "who and why on every history entry; migrations between definition versions",
    // Added columns with constant defaults change only the catalog (instant on any size of table);
    // rows written before read back with an empty actor and comment and no payload. A migration
    // entry is stored as type 'transitioned' with migrated_from set, as in SQLite (rows.ts reads it
    // back as 'migrated'). workflow_commit_batch gains four arrays and sets definition_version on a
    // compare-and-set; migration 4's function stays beside it (another signature), so a replica of
    // the previous build keeps committing during a rolling upgrade.
    sql: `
      ALTER TABLE events ADD COLUMN actor         TEXT    NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN comment       TEXT    NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN payload       JSONB;   -- google.protobuf.Struct as JSON; NULL = none
      ALTER TABLE events ADD COLUMN migrated_from INTEGER; -- the definition version before a migration; NULL otherwise

      CREATE FUNCTION workflow_commit_batch(
        p_kind text[], p_id text[], p_from_version integer[], p_definition_id text[], p_definition_version integer[],
        p_state text[], p_status text[], p_version integer[], p_create_time timestamptz[], p_update_time timestamptz[],
        p_action_id text[], p_from_state text[], p_entry_request_id text[], p_request_id text[], p_fingerprint text[],
        p_actor text[], p_comment text[], p_payload jsonb[], p_migrated_from integer[]
      ) RETURNS TABLE (o_index integer, o_outcome text, o_revision bigint, o_current_version integer,
                       o_current_state text, o_current_status text, o_current_definition_version integer,
                       o_current_update_time timestamptz)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_n integer := coalesce(array_length(p_id, 1), 0);
        v_order integer[];
        v_ok integer[] := '{}';
        v_used text[] := '{}';
        v_outcome text[];
        v_current integer[];
        v_row instances%ROWTYPE;
        v_current_row instances[];
        v_revision bigint[];
        v_before text;
        v_instances integer := 0;
        v_completed integer := 0;
        v_head bigint;
        v_k integer;
        i integer;
      BEGIN
        IF v_n = 0 THEN
          RETURN;
        END IF;
        v_outcome := array_fill(NULL::text, ARRAY[v_n]);
        v_current := array_fill(NULL::integer, ARRAY[v_n]);
        v_current_row := array_fill(NULL::instances, ARRAY[v_n]);
        v_revision := array_fill(NULL::bigint, ARRAY[v_n]);
        -- A request_id committed meanwhile by another replica is visible once its lock is ours.
        PERFORM pg_advisory_xact_lock(${REQUEST_LOCK_NAMESPACE}, h)
           FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest(p_request_id) AS r WHERE r IS NOT NULL ORDER BY 1) AS locks;
        SELECT array_agg(ord ORDER BY p_id[ord] COLLATE "C", ord) INTO v_order FROM generate_subscripts(p_id, 1) AS ord;
        FOREACH i IN ARRAY v_order LOOP
          IF p_request_id[i] IS NOT NULL THEN
            IF p_request_id[i] = ANY (v_used) OR EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id[i]) THEN
              v_outcome[i] := 'request_exists';
              CONTINUE;
            END IF;
          END IF;
          IF p_kind[i] = 'start' THEN
            -- Waits for a concurrent insert of the same id, then does nothing: nothing written.
            INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time)
            VALUES (p_id[i], p_definition_id[i], p_definition_version[i], p_state[i], p_status[i], 1, p_create_time[i], p_update_time[i])
            ON CONFLICT (id) DO NOTHING;
            IF NOT FOUND THEN
              v_outcome[i] := 'instance_exists';
              CONTINUE;
            END IF;
            v_instances := v_instances + 1;
            IF p_status[i] = 'completed' THEN
              v_completed := v_completed + 1;
            END IF;
          ELSE
            -- Compare-and-set; the self-join yields the status before the update (for the completed count).
            -- definition_version changes only by a migration (p_migrated_from set).
            UPDATE instances AS t
               SET definition_version = p_definition_version[i], current_state = p_state[i], status = p_status[i],
                   version = p_version[i], update_time = p_update_time[i]
              FROM instances AS old
             WHERE t.id = p_id[i] AND t.version = p_from_version[i] AND old.id = t.id
            RETURNING old.status INTO v_before;
            IF NOT FOUND THEN
              -- The instance as stored now, so the caller can validate again without another read.
              v_outcome[i] := 'version_conflict';
              SELECT * INTO v_row FROM instances WHERE id = p_id[i];
              IF FOUND THEN
                v_current[i] := v_row.version;
                v_current_row[i] := v_row;
              ELSE
                v_current[i] := 0;
              END IF;
              CONTINUE;
            END IF;
            v_completed := v_completed + (CASE WHEN p_status[i] = 'completed' THEN 1 ELSE 0 END)
                                       - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END);
          END IF;
          v_outcome[i] := 'ok';
          v_ok := v_ok || i;
          IF p_request_id[i] IS NOT NULL THEN
            v_used := v_used || p_request_id[i];
          END IF;
        END LOOP;
        v_k := coalesce(array_length(v_ok, 1), 0);
        IF v_k > 0 THEN
          -- The serialized tail: the counter row is locked from here to COMMIT, so revisions are
          -- handed out in commit order across replicas.
          UPDATE counters
             SET revision = counters.revision + v_k,
                 instances = counters.instances + v_instances,
                 completed = counters.completed + v_completed
          RETURNING counters.revision INTO v_head;
          FOR j IN 1..v_k LOOP
            v_revision[v_ok[j]] := v_head - v_k + j;
          END LOOP;
          INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                              action_id, from_state, to_state, time, request_id, actor, comment, payload, migrated_from)
          SELECT v_revision[w], CASE WHEN p_kind[w] = 'start' THEN 'started' ELSE 'transitioned' END,
                 p_id[w], p_definition_id[w], p_definition_version[w], p_version[w], p_status[w], p_create_time[w],
                 p_action_id[w], p_from_state[w], p_state[w], p_update_time[w], p_entry_request_id[w],
                 p_actor[w], p_comment[w], p_payload[w], p_migrated_from[w]
            FROM unnest(v_ok) AS w;
          INSERT INTO requests (request_id, fingerprint, revision, time)
          SELECT p_request_id[w], p_fingerprint[w], v_revision[w], p_update_time[w]
            FROM unnest(v_ok) AS w WHERE p_request_id[w] IS NOT NULL;
          PERFORM pg_notify('${EVENTS_CHANNEL}', v_head::text);
        END IF;
        RETURN QUERY SELECT ord, v_outcome[ord], v_revision[ord], v_current[ord],
                            (v_current_row[ord]).current_state::text, (v_current_row[ord]).status,
                            (v_current_row[ord]).definition_version, (v_current_row[ord]).update_time
                       FROM generate_subscripts(p_id, 1) AS ord;
      END
      $fn$;
    `,
  },
  {
    version: 6,
    name: "the path each instance took: (action, from state) counts kept by a trigger; instances newest first",
    // RenderDefinition with an instance counts the edges it took. Counting its history on every call
    // costs the length of the history; this table holds the counts, one row per pair, filled from the
    // rows written before and then maintained by a statement trigger in the commit's transaction, so
    // workflow_commit_batch stays as it is and a batch costs one upsert. Two transactions never
    // update the same instance's counts at once: each first updates (locks) the instance's row.
    // The start and migrations have no action_id and count nothing.
    // The old REST API lists the newest instances first: an index in that order.
    // Replicas of the previous build may be committing meanwhile (a rolling upgrade): the lock makes
    // their inserts wait until the trigger exists, so no row falls between the backfill and it. Their
    // commits write the instance row before the event, so instances is locked first, in that order:
    // locking events alone let a commit that had written its instance row wait on events while this
    // migration waited on instances (CREATE INDEX): a deadlock that failed the new replica's start.
    sql: `
      LOCK TABLE instances, events IN SHARE ROW EXCLUSIVE MODE;

      CREATE INDEX instances_by_create_time ON instances (create_time, id);

      CREATE TABLE action_counts (
        instance_id TEXT COLLATE "C" NOT NULL,
        action_id   TEXT COLLATE "C" NOT NULL,
        from_state  TEXT COLLATE "C" NOT NULL,
        count       BIGINT           NOT NULL,
        PRIMARY KEY (instance_id, action_id, from_state)
      );

      INSERT INTO action_counts (instance_id, action_id, from_state, count)
        SELECT instance_id, action_id, from_state, count(*) FROM events WHERE action_id <> ''
         GROUP BY instance_id, action_id, from_state;

      CREATE FUNCTION workflow_count_actions() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO action_counts AS c (instance_id, action_id, from_state, count)
        SELECT instance_id, action_id, from_state, count(*) FROM new_events WHERE action_id <> ''
         GROUP BY instance_id, action_id, from_state
         ORDER BY instance_id, action_id, from_state
        ON CONFLICT (instance_id, action_id, from_state) DO UPDATE SET count = c.count + EXCLUDED.count;
        RETURN NULL;
      END
      $fn$;

      CREATE TRIGGER events_count_actions AFTER INSERT ON events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION workflow_count_actions();
    `,
  },
  {
    version: 7,
    name: "work items: the claim queue of background work (timers, deliveries, batch operations)",
    // Self-contained (it touches no other table), so it can be renumbered when merged. Due times
    // and leases are on the database's clock (now()), so replicas agree whatever their own clocks
    // say. Finished items are deleted, so the table holds only what is pending or leased (a small
    // hot table; autovacuum keeps up with its churn); the partial index serves the claim's scan in run_at order, work_items_by_key finds the head of a key,
    // work_items_leased the sweep.
    sql: `
      CREATE TABLE work_items (
        id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        kind             TEXT COLLATE "C" NOT NULL,
        key              TEXT COLLATE "C" NOT NULL,
        seq              BIGINT           NOT NULL,
        run_at           TIMESTAMPTZ      NOT NULL,
        payload          JSONB            NOT NULL,
        state            TEXT             NOT NULL CHECK (state IN ('pending', 'leased')),
        owner            TEXT,
        attempt          INTEGER          NOT NULL DEFAULT 0,
        lease_expires_at TIMESTAMPTZ,
        last_error       TEXT,
        create_time      TIMESTAMPTZ      NOT NULL DEFAULT now()
      );
      CREATE INDEX work_items_due    ON work_items (run_at, id) WHERE state = 'pending';
      CREATE INDEX work_items_by_key ON work_items (kind, key, seq, id);
      CREATE INDEX work_items_leased ON work_items (lease_expires_at) WHERE state = 'leased';
    `,
  },
  {
    version: 8,
    name: "scheduled actions (state timers and ScheduleAction); the timer and scheduled action on history entries",
    // A scheduled action is the durable record (what, when, for whom, how it ended); its work item
    // (work_items, kind 'timer', same id) is what the workers claim, written and deleted in the same
    // transaction. Pending records are read by instance in due order (the list, the disarm of a
    // change), done ones by instance newest first: two partial indexes. request_id is unique when set,
    // so two replicas scheduling with one request_id meet in the index, not in a read.
    //
    // Times are kept to the millisecond (the cursors of ListScheduledActions are in ms), rounded up
    // for due times so nothing is due earlier than asked. An armed timer is due at
    // greatest(now(), entry time) + after: the database's clock decides, so a replica whose clock runs
    // behind cannot arm a timer that fires early, and one whose clock runs ahead only makes it late.
    //
    // workflow_commit_batch gains three arrays (the entry's timer_id and scheduled_action_id, and each
    // write's TimerChange as JSON, applied by workflow_apply_timers in the write's place in the
    // batch); migration 5's function stays beside it (another signature), so a replica of the
    // previous build keeps committing during a rolling upgrade (its writes carry no timers). Adding
    // the event columns with constant defaults changes only the catalog.
    sql: `
      ALTER TABLE events ADD COLUMN timer_id            TEXT NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN scheduled_action_id TEXT NOT NULL DEFAULT '';

      CREATE TABLE scheduled_actions (
        id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        instance_id      TEXT COLLATE "C" NOT NULL,
        action_id        TEXT COLLATE "C" NOT NULL,
        due_time         TIMESTAMPTZ      NOT NULL,
        timer_id         TEXT COLLATE "C" NOT NULL DEFAULT '', -- '' for ScheduleAction
        armed_version    INTEGER          NOT NULL,
        status           TEXT             NOT NULL CHECK (status IN ('pending', 'fired', 'refused', 'cancelled')),
        result           TEXT             NOT NULL DEFAULT '',
        expected_version INTEGER          NOT NULL DEFAULT 0,
        request_id       TEXT COLLATE "C" NOT NULL DEFAULT '', -- '' = none
        fingerprint      TEXT             NOT NULL DEFAULT '',
        actor            TEXT             NOT NULL DEFAULT '',
        comment          TEXT             NOT NULL DEFAULT '',
        payload          JSONB,                                -- NULL = none
        create_time      TIMESTAMPTZ      NOT NULL,
        end_time         TIMESTAMPTZ                           -- NULL while pending
      );
      CREATE UNIQUE INDEX scheduled_actions_by_request ON scheduled_actions (request_id) WHERE request_id <> '';
      CREATE INDEX scheduled_actions_pending ON scheduled_actions (instance_id, due_time, id) WHERE status = 'pending';
      CREATE INDEX scheduled_actions_done    ON scheduled_actions (instance_id, end_time DESC, id) WHERE status <> 'pending';

      -- A time to the millisecond, rounded up (due times: never earlier than asked).
      CREATE FUNCTION workflow_ms_ceil(t timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $fn$
        SELECT date_trunc('milliseconds', t + interval '999 microseconds')
      $fn$;

      -- One write's TimerChange (src/engine/types.ts), in its transaction, in order: the firing, the
      -- disarm, the arming. p_version is the instance version the write created, p_time its entry's
      -- time. Returns whether a work item was armed (the caller notifies the workers). 'timer' is
      -- both TIMER_ACTOR (the actor of an armed timer) and TIMER_WORK_KIND (its work item's kind).
      CREATE FUNCTION workflow_apply_timers(p_instance_id text, p_version integer, p_time timestamptz, p_timers jsonb)
      RETURNS boolean LANGUAGE plpgsql AS $fn$
      DECLARE
        v_now timestamptz := date_trunc('milliseconds', greatest(now(), p_time));
        v_fired text := p_timers->>'fired';
        v_disarm text := p_timers->>'disarm';
        v_armed integer;
        -- What the timers count from: the entry's time, never before the database's clock (a replica
        -- whose clock runs behind cannot arm a timer that fires early); for a migration ('state-entered'),
        -- the entry that entered the state the migration keeps (the latest that is not a migration).
        v_base timestamptz := greatest(now(), p_time);
      BEGIN
        IF p_timers->>'armFrom' = 'state-entered' THEN
          SELECT coalesce(max(e.time), v_base) INTO v_base
            FROM (SELECT time FROM events WHERE instance_id = p_instance_id AND migrated_from IS NULL
                   ORDER BY version DESC LIMIT 1) AS e;
        END IF;
        IF v_fired IS NOT NULL THEN
          UPDATE scheduled_actions SET status = 'fired', result = 'version ' || p_version, end_time = v_now
           WHERE id = v_fired AND status = 'pending';
          DELETE FROM work_items WHERE id = v_fired;
        END IF;
        IF v_disarm IN ('state', 'all') THEN
          WITH gone AS (
            DELETE FROM scheduled_actions
             WHERE instance_id = p_instance_id AND status = 'pending' AND timer_id <> '' RETURNING id
          )
          DELETE FROM work_items WHERE id IN (SELECT id FROM gone);
        END IF;
        IF v_disarm = 'all' THEN
          WITH gone AS (
            UPDATE scheduled_actions SET status = 'cancelled', result = 'instance completed', end_time = v_now
             WHERE instance_id = p_instance_id AND status = 'pending' RETURNING id
          )
          DELETE FROM work_items WHERE id IN (SELECT id FROM gone);
        END IF;
        WITH arm AS (
          SELECT a.id, a."timerId" AS timer_id, a."actionId" AS action_id,
                 workflow_ms_ceil(v_base + a."afterMs" * interval '1 millisecond') AS due
            FROM jsonb_to_recordset(coalesce(p_timers->'arm', '[]'::jsonb)) AS a(id text, "timerId" text, "actionId" text, "afterMs" float8)
        ), stored AS (
          INSERT INTO scheduled_actions (id, instance_id, action_id, due_time, timer_id, armed_version, status, actor, create_time)
          SELECT id, p_instance_id, action_id, due, timer_id, p_version, 'pending', 'timer', date_trunc('milliseconds', p_time)
            FROM arm
          ON CONFLICT (id) DO NOTHING
          RETURNING id, due_time
        )
        INSERT INTO work_items (id, kind, key, seq, run_at, payload, state)
        SELECT id, 'timer', id, 0, due_time, jsonb_build_object('instanceId', p_instance_id), 'pending' FROM stored
        ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS v_armed = ROW_COUNT;
        RETURN v_armed > 0;
      END
      $fn$;

      CREATE FUNCTION workflow_commit_batch(
        p_kind text[], p_id text[], p_from_version integer[], p_definition_id text[], p_definition_version integer[],
        p_state text[], p_status text[], p_version integer[], p_create_time timestamptz[], p_update_time timestamptz[],
        p_action_id text[], p_from_state text[], p_entry_request_id text[], p_request_id text[], p_fingerprint text[],
        p_actor text[], p_comment text[], p_payload jsonb[], p_migrated_from integer[],
        p_timer_id text[], p_scheduled_action_id text[], p_timers jsonb[]
      ) RETURNS TABLE (o_index integer, o_outcome text, o_revision bigint, o_current_version integer,
                       o_current_state text, o_current_status text, o_current_definition_version integer,
                       o_current_update_time timestamptz)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_n integer := coalesce(array_length(p_id, 1), 0);
        v_order integer[];
        v_ok integer[] := '{}';
        v_used text[] := '{}';
        v_outcome text[];
        v_current integer[];
        v_row instances%ROWTYPE;
        v_current_row instances[];
        v_revision bigint[];
        v_before text;
        v_instances integer := 0;
        v_completed integer := 0;
        v_head bigint;
        v_k integer;
        v_armed boolean := false;
        i integer;
      BEGIN
        IF v_n = 0 THEN
          RETURN;
        END IF;
        v_outcome := array_fill(NULL::text, ARRAY[v_n]);
        v_current := array_fill(NULL::integer, ARRAY[v_n]);
        v_current_row := array_fill(NULL::instances, ARRAY[v_n]);
        v_revision := array_fill(NULL::bigint, ARRAY[v_n]);
        -- A request_id committed meanwhile by another replica is visible once its lock is ours.
        PERFORM pg_advisory_xact_lock(${REQUEST_LOCK_NAMESPACE}, h)
           FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest(p_request_id) AS r WHERE r IS NOT NULL ORDER BY 1) AS locks;
        SELECT array_agg(ord ORDER BY p_id[ord] COLLATE "C", ord) INTO v_order FROM generate_subscripts(p_id, 1) AS ord;
        FOREACH i IN ARRAY v_order LOOP
          IF p_request_id[i] IS NOT NULL THEN
            IF p_request_id[i] = ANY (v_used) OR EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id[i]) THEN
              v_outcome[i] := 'request_exists';
              CONTINUE;
            END IF;
          END IF;
          IF p_kind[i] = 'start' THEN
            -- Waits for a concurrent insert of the same id, then does nothing: nothing written.
            INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time)
            VALUES (p_id[i], p_definition_id[i], p_definition_version[i], p_state[i], p_status[i], 1, p_create_time[i], p_update_time[i])
            ON CONFLICT (id) DO NOTHING;
            IF NOT FOUND THEN
              v_outcome[i] := 'instance_exists';
              CONTINUE;
            END IF;
            v_instances := v_instances + 1;
            IF p_status[i] = 'completed' THEN
              v_completed := v_completed + 1;
            END IF;
          ELSE
            -- Compare-and-set; the self-join yields the status before the update (for the completed count).
            -- definition_version changes only by a migration (p_migrated_from set).
            UPDATE instances AS t
               SET definition_version = p_definition_version[i], current_state = p_state[i], status = p_status[i],
                   version = p_version[i], update_time = p_update_time[i]
              FROM instances AS old
             WHERE t.id = p_id[i] AND t.version = p_from_version[i] AND old.id = t.id
            RETURNING old.status INTO v_before;
            IF NOT FOUND THEN
              -- The instance as stored now, so the caller can validate again without another read.
              v_outcome[i] := 'version_conflict';
              SELECT * INTO v_row FROM instances WHERE id = p_id[i];
              IF FOUND THEN
                v_current[i] := v_row.version;
                v_current_row[i] := v_row;
              ELSE
                v_current[i] := 0;
              END IF;
              CONTINUE;
            END IF;
            v_completed := v_completed + (CASE WHEN p_status[i] = 'completed' THEN 1 ELSE 0 END)
                                       - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END);
          END IF;
          v_outcome[i] := 'ok';
          v_ok := v_ok || i;
          -- The write's timers, in its place in the batch (a chain applies them in order).
          IF p_timers[i] IS NOT NULL THEN
            v_armed := workflow_apply_timers(p_id[i], p_version[i], p_update_time[i], p_timers[i]) OR v_armed;
          END IF;
          IF p_request_id[i] IS NOT NULL THEN
            v_used := v_used || p_request_id[i];
          END IF;
        END LOOP;
        v_k := coalesce(array_length(v_ok, 1), 0);
        IF v_k > 0 THEN
          -- The serialized tail: the counter row is locked from here to COMMIT, so revisions are
          -- handed out in commit order across replicas.
          UPDATE counters
             SET revision = counters.revision + v_k,
                 instances = counters.instances + v_instances,
                 completed = counters.completed + v_completed
          RETURNING counters.revision INTO v_head;
          FOR j IN 1..v_k LOOP
            v_revision[v_ok[j]] := v_head - v_k + j;
          END LOOP;
          INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                              action_id, from_state, to_state, time, request_id, actor, comment, payload, migrated_from,
                              timer_id, scheduled_action_id)
          SELECT v_revision[w], CASE WHEN p_kind[w] = 'start' THEN 'started' ELSE 'transitioned' END,
                 p_id[w], p_definition_id[w], p_definition_version[w], p_version[w], p_status[w], p_create_time[w],
                 p_action_id[w], p_from_state[w], p_state[w], p_update_time[w], p_entry_request_id[w],
                 p_actor[w], p_comment[w], p_payload[w], p_migrated_from[w], p_timer_id[w], p_scheduled_action_id[w]
            FROM unnest(v_ok) AS w;
          INSERT INTO requests (request_id, fingerprint, revision, time)
          SELECT p_request_id[w], p_fingerprint[w], v_revision[w], p_update_time[w]
            FROM unnest(v_ok) AS w WHERE p_request_id[w] IS NOT NULL;
          PERFORM pg_notify('${EVENTS_CHANNEL}', v_head::text);
          IF v_armed THEN
            PERFORM pg_notify('${WORK_CHANNEL}', '');
          END IF;
        END IF;
        RETURN QUERY SELECT ord, v_outcome[ord], v_revision[ord], v_current[ord],
                            (v_current_row[ord]).current_state::text, (v_current_row[ord]).status,
                            (v_current_row[ord]).definition_version, (v_current_row[ord]).update_time
                       FROM generate_subscripts(p_id, 1) AS ord;
      END
      $fn$;

      -- The work queue's claim and next due time (postgres-work-queue.ts), with planner settings of
      -- their own. Their right plan walks work_items_due in (run_at, id) order and stops after the
      -- first heads found; a plan on statistics that lag a burst (or that never come: autovacuum off)
      -- estimates a handful of due rows, collects every due item, probes each for its key's head and
      -- sorts them, so a claim of 32 out of a backlog of N costs N, and the backlog N x N / 32. The
      -- head-of-key probe is a scalar subquery, so it stays a per-row probe of work_items_by_key
      -- rather than becoming an anti-join over the table.
      CREATE FUNCTION workflow_claim_work(p_kinds text[], p_limit integer, p_owner text, p_lease_ms float8)
      RETURNS SETOF work_items LANGUAGE sql VOLATILE
      SET enable_sort = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
      AS $fn$
        WITH due AS (
          SELECT w.id FROM work_items w
           WHERE w.state = 'pending' AND w.run_at <= now() AND w.kind = ANY (p_kinds)
             AND NOT (SELECT EXISTS (SELECT 1 FROM work_items e
                                      WHERE e.kind = w.kind AND e.key = w.key AND (e.seq, e.id) < (w.seq, w.id)))
           ORDER BY w.run_at, w.id
           LIMIT p_limit
           FOR UPDATE SKIP LOCKED
        )
        UPDATE work_items w
           SET state = 'leased', owner = p_owner, attempt = w.attempt + 1,
               lease_expires_at = now() + p_lease_ms * interval '1 millisecond'
          FROM due WHERE w.id = due.id AND w.state = 'pending' -- rechecked on the row it locked
        RETURNING w.*
      $fn$;

      CREATE FUNCTION workflow_next_due_ms(p_kinds text[]) RETURNS float8 LANGUAGE sql STABLE
      SET enable_sort = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
      AS $fn$
        SELECT extract(epoch FROM w.run_at - now())::float8 * 1000 FROM work_items w
         WHERE w.state = 'pending' AND w.kind = ANY (p_kinds)
           AND NOT (SELECT EXISTS (SELECT 1 FROM work_items e
                                    WHERE e.kind = w.kind AND e.key = w.key AND (e.seq, e.id) < (w.seq, w.id)))
         ORDER BY w.run_at, w.id
         LIMIT 1
      $fn$;
    `,
  },
  {
    version: 9,
    name: "instance data: the variables of every instance and of every event, the variables each change set",
    // JSON objects (google.protobuf.Struct), NULL = none: instances of definitions without a
    // variables schema, and rows written before, read back without the fields. An event row holds
    // the instance as its change left it, variables included (as_of_version and the watch streams
    // read them from there). Columns without defaults change only the catalog.
    //
    // workflow_commit_batch gains two arrays (each write's instance variables and the variables its
    // entry set) and returns the current variables with a version_conflict, so the caller can
    // validate again without another read. Migration 8's signature stays, for a replica of the
    // previous build during a rolling upgrade (migrations 4's and 5's stay as they were), but it now
    // calls this one with the variables each instance has when the call starts: that build never
    // changes them, and its compare-and-set succeeds only from the version they belong to, so its
    // event rows hold the instance's variables too and its changes keep them, instead of storing
    // none and showing watchers and as_of_version an instance that lost its data.
    sql: `
      ALTER TABLE instances ADD COLUMN variables     JSONB; -- NULL = none
      ALTER TABLE events    ADD COLUMN variables     JSONB; -- the instance's variables after the change; NULL = none
      ALTER TABLE events    ADD COLUMN variables_set JSONB; -- the variables the change set, with their new values; NULL = none

      CREATE FUNCTION workflow_commit_batch(
        p_kind text[], p_id text[], p_from_version integer[], p_definition_id text[], p_definition_version integer[],
        p_state text[], p_status text[], p_version integer[], p_create_time timestamptz[], p_update_time timestamptz[],
        p_action_id text[], p_from_state text[], p_entry_request_id text[], p_request_id text[], p_fingerprint text[],
        p_actor text[], p_comment text[], p_payload jsonb[], p_migrated_from integer[],
        p_timer_id text[], p_scheduled_action_id text[], p_timers jsonb[], p_variables jsonb[], p_variables_set jsonb[]
      ) RETURNS TABLE (o_index integer, o_outcome text, o_revision bigint, o_current_version integer,
                       o_current_state text, o_current_status text, o_current_definition_version integer,
                       o_current_update_time timestamptz, o_current_variables jsonb)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_n integer := coalesce(array_length(p_id, 1), 0);
        v_order integer[];
        v_ok integer[] := '{}';
        v_used text[] := '{}';
        v_outcome text[];
        v_current integer[];
        v_row instances%ROWTYPE;
        v_current_row instances[];
        v_revision bigint[];
        v_before text;
        v_instances integer := 0;
        v_completed integer := 0;
        v_head bigint;
        v_k integer;
        v_armed boolean := false;
        i integer;
      BEGIN
        IF v_n = 0 THEN
          RETURN;
        END IF;
        v_outcome := array_fill(NULL::text, ARRAY[v_n]);
        v_current := array_fill(NULL::integer, ARRAY[v_n]);
        v_current_row := array_fill(NULL::instances, ARRAY[v_n]);
        v_revision := array_fill(NULL::bigint, ARRAY[v_n]);
        -- A request_id committed meanwhile by another replica is visible once its lock is ours.
        PERFORM pg_advisory_xact_lock(${REQUEST_LOCK_NAMESPACE}, h)
           FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest(p_request_id) AS r WHERE r IS NOT NULL ORDER BY 1) AS locks;
        SELECT array_agg(ord ORDER BY p_id[ord] COLLATE "C", ord) INTO v_order FROM generate_subscripts(p_id, 1) AS ord;
        FOREACH i IN ARRAY v_order LOOP
          IF p_request_id[i] IS NOT NULL THEN
            IF p_request_id[i] = ANY (v_used) OR EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id[i]) THEN
              v_outcome[i] := 'request_exists';
              CONTINUE;
            END IF;
          END IF;
          IF p_kind[i] = 'start' THEN
            -- Waits for a concurrent insert of the same id, then does nothing: nothing written.
            INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time,
                                   variables)
            VALUES (p_id[i], p_definition_id[i], p_definition_version[i], p_state[i], p_status[i], 1, p_create_time[i], p_update_time[i],
                    p_variables[i])
            ON CONFLICT (id) DO NOTHING;
            IF NOT FOUND THEN
              v_outcome[i] := 'instance_exists';
              CONTINUE;
            END IF;
            v_instances := v_instances + 1;
            IF p_status[i] = 'completed' THEN
              v_completed := v_completed + 1;
            END IF;
          ELSE
            -- Compare-and-set; the self-join yields the status before the update (for the completed count).
            -- definition_version changes only by a migration (p_migrated_from set).
            UPDATE instances AS t
               SET definition_version = p_definition_version[i], current_state = p_state[i], status = p_status[i],
                   version = p_version[i], update_time = p_update_time[i], variables = p_variables[i]
              FROM instances AS old
             WHERE t.id = p_id[i] AND t.version = p_from_version[i] AND old.id = t.id
            RETURNING old.status INTO v_before;
            IF NOT FOUND THEN
              -- The instance as stored now, so the caller can validate again without another read.
              v_outcome[i] := 'version_conflict';
              SELECT * INTO v_row FROM instances WHERE id = p_id[i];
              IF FOUND THEN
                v_current[i] := v_row.version;
                v_current_row[i] := v_row;
              ELSE
                v_current[i] := 0;
              END IF;
              CONTINUE;
            END IF;
            v_completed := v_completed + (CASE WHEN p_status[i] = 'completed' THEN 1 ELSE 0 END)
                                       - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END);
          END IF;
          v_outcome[i] := 'ok';
          v_ok := v_ok || i;
          -- The write's timers, in its place in the batch (a chain applies them in order).
          IF p_timers[i] IS NOT NULL THEN
            v_armed := workflow_apply_timers(p_id[i], p_version[i], p_update_time[i], p_timers[i]) OR v_armed;
          END IF;
          IF p_request_id[i] IS NOT NULL THEN
            v_used := v_used || p_request_id[i];
          END IF;
        END LOOP;
        v_k := coalesce(array_length(v_ok, 1), 0);
        IF v_k > 0 THEN
          -- The serialized tail: the counter row is locked from here to COMMIT, so revisions are
          -- handed out in commit order across replicas.
          UPDATE counters
             SET revision = counters.revision + v_k,
                 instances = counters.instances + v_instances,
                 completed = counters.completed + v_completed
          RETURNING counters.revision INTO v_head;
          FOR j IN 1..v_k LOOP
            v_revision[v_ok[j]] := v_head - v_k + j;
          END LOOP;
          INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                              action_id, from_state, to_state, time, request_id, actor, comment, payload, migrated_from,
                              timer_id, scheduled_action_id, variables, variables_set)
          SELECT v_revision[w], CASE WHEN p_kind[w] = 'start' THEN 'started' ELSE 'transitioned' END,
                 p_id[w], p_definition_id[w], p_definition_version[w], p_version[w], p_status[w], p_create_time[w],
                 p_action_id[w], p_from_state[w], p_state[w], p_update_time[w], p_entry_request_id[w],
                 p_actor[w], p_comment[w], p_payload[w], p_migrated_from[w], p_timer_id[w], p_scheduled_action_id[w],
                 p_variables[w], p_variables_set[w]
            FROM unnest(v_ok) AS w;
          INSERT INTO requests (request_id, fingerprint, revision, time)
          SELECT p_request_id[w], p_fingerprint[w], v_revision[w], p_update_time[w]
            FROM unnest(v_ok) AS w WHERE p_request_id[w] IS NOT NULL;
          PERFORM pg_notify('${EVENTS_CHANNEL}', v_head::text);
          IF v_armed THEN
            PERFORM pg_notify('${WORK_CHANNEL}', '');
          END IF;
        END IF;
        RETURN QUERY SELECT ord, v_outcome[ord], v_revision[ord], v_current[ord],
                            (v_current_row[ord]).current_state::text, (v_current_row[ord]).status,
                            (v_current_row[ord]).definition_version, (v_current_row[ord]).update_time,
                            (v_current_row[ord]).variables
                       FROM generate_subscripts(p_id, 1) AS ord;
      END
      $fn$;

      CREATE OR REPLACE FUNCTION workflow_commit_batch(
        p_kind text[], p_id text[], p_from_version integer[], p_definition_id text[], p_definition_version integer[],
        p_state text[], p_status text[], p_version integer[], p_create_time timestamptz[], p_update_time timestamptz[],
        p_action_id text[], p_from_state text[], p_entry_request_id text[], p_request_id text[], p_fingerprint text[],
        p_actor text[], p_comment text[], p_payload jsonb[], p_migrated_from integer[],
        p_timer_id text[], p_scheduled_action_id text[], p_timers jsonb[]
      ) RETURNS TABLE (o_index integer, o_outcome text, o_revision bigint, o_current_version integer,
                       o_current_state text, o_current_status text, o_current_definition_version integer,
                       o_current_update_time timestamptz)
      LANGUAGE sql AS $fn$
        SELECT b.o_index, b.o_outcome, b.o_revision, b.o_current_version, b.o_current_state, b.o_current_status,
               b.o_current_definition_version, b.o_current_update_time
          FROM workflow_commit_batch(
                 p_kind, p_id, p_from_version, p_definition_id, p_definition_version, p_state, p_status, p_version,
                 p_create_time, p_update_time, p_action_id, p_from_state, p_entry_request_id, p_request_id, p_fingerprint,
                 p_actor, p_comment, p_payload, p_migrated_from, p_timer_id, p_scheduled_action_id, p_timers,
                 ARRAY(SELECT i.variables FROM generate_subscripts(p_id, 1) AS ord
                         LEFT JOIN instances AS i ON i.id = p_id[ord] ORDER BY ord),
                 NULL::jsonb[]) AS b
      $fn$;
    `,
  },
];

/** pg_advisory_xact_lock key guarding migrations: "workflow" in ASCII. */
const MIGRATION_LOCK_KEY = "8606216600190023543";

/** Applies the migrations the database lacks, under an advisory lock. Refuses a newer schema. */
export async function migrate(client: PoolClient): Promise<void> {
  await client.query("BEGIN");
  try {
    // Held to the end of this transaction: a replica starting at the same moment waits here,
    // then sees the migrations recorded and applies nothing.
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time TIMESTAMPTZ NOT NULL)",
    );
    const { rows } = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
    for (const m of pendingMigrations(MIGRATIONS, rows[0]?.v ?? 0)) {
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name, applied_time) VALUES ($1, $2, now())", [m.version, m.name]);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}
