//! Versioned schema migrations.
//!
//! `MIGRATIONS[i]` takes a database from schema version `i` to `i + 1`; the
//! version lives in `PRAGMA user_version`. To change the schema, append a
//! migration: never edit one that has shipped.

/// Marks a database as Vigil's (`PRAGMA application_id`): "VGIL".
pub(crate) const APPLICATION_ID: i64 = 0x5647_494C;

/// Ordered migrations; the schema version of this build is their count.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: audit trail, chain head, derived state.
    r#"
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        runbook   TEXT,
        target    TEXT,
        actor     TEXT,
        action_id TEXT,
        json      TEXT NOT NULL,
        prev      TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    CREATE INDEX audit_kind      ON audit(kind);
    CREATE INDEX audit_runbook   ON audit(runbook)   WHERE runbook IS NOT NULL;
    CREATE INDEX audit_target    ON audit(target)    WHERE target IS NOT NULL;
    CREATE INDEX audit_actor     ON audit(actor)     WHERE actor IS NOT NULL;
    CREATE INDEX audit_action_id ON audit(action_id) WHERE action_id IS NOT NULL;

    -- The newest record of the chain, written in the same transaction as the
    -- record: lets verify notice records removed from the end.
    CREATE TABLE chain_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash TEXT NOT NULL
    );

    -- Derived state. Keyed tables are WITHOUT ROWID: one b-tree each, so a
    -- commit dirties fewer pages.
    CREATE TABLE actions (
        action_id   TEXT PRIMARY KEY,
        runbook     TEXT,
        target      TEXT,
        alert       TEXT,
        fingerprint TEXT,
        params      TEXT,
        state       TEXT NOT NULL,
        first_at    TEXT NOT NULL,
        last_at     TEXT NOT NULL,
        attempt     INTEGER,
        first_seq   INTEGER NOT NULL,
        last_seq    INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE breakers (
        runbook   TEXT NOT NULL,
        target    TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        reason    TEXT,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (runbook, target)
    ) WITHOUT ROWID;

    CREATE TABLE alerts (
        fingerprint TEXT PRIMARY KEY,
        alert       TEXT,
        labels      TEXT,
        severity    TEXT,
        status      TEXT NOT NULL,
        since       TEXT NOT NULL,
        last_at     TEXT NOT NULL,
        resolved_at TEXT,
        seq         INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE modes (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        at    TEXT NOT NULL,
        seq   INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE action_starts (
        seq       INTEGER PRIMARY KEY,
        runbook   TEXT NOT NULL,
        target    TEXT NOT NULL,
        action_id TEXT,
        at        TEXT NOT NULL,
        at_us     INTEGER NOT NULL
    );
    CREATE INDEX action_starts_at ON action_starts(at_us);
    "#,
    // 2: the actions a restart must report as interrupted, found without
    // reading the whole history.
    r#"
    CREATE INDEX actions_open ON actions(state)
        WHERE state IN ('action_started', 'action_interrupted');
    "#,
    // 3: one compact index for the audit filters instead of five. Each
    // secondary index took a b-tree descent per record and dirtied a page
    // per distinct value in every commit; `audit_tags` is keyed by
    // (bucket = seq >> 10, tag, seq), so a commit's entries land in the few
    // pages of the newest bucket. `audit_names` numbers the values. The
    // `action_id` index was never used by a query.
    r#"
    DROP INDEX audit_kind;
    DROP INDEX audit_runbook;
    DROP INDEX audit_target;
    DROP INDEX audit_actor;
    DROP INDEX audit_action_id;

    CREATE TABLE audit_names (
        id   INTEGER PRIMARY KEY,
        col  TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (col, name)
    );

    CREATE TABLE audit_tags (
        bucket INTEGER NOT NULL,
        tag    INTEGER NOT NULL,
        seq    INTEGER NOT NULL,
        PRIMARY KEY (bucket, tag, seq)
    ) WITHOUT ROWID;

    INSERT INTO audit_names (col, name)
        SELECT 'kind', kind FROM audit
        UNION SELECT 'runbook', runbook FROM audit WHERE runbook IS NOT NULL
        UNION SELECT 'target', target FROM audit WHERE target IS NOT NULL
        UNION SELECT 'actor', actor FROM audit WHERE actor IS NOT NULL;

    INSERT INTO audit_tags (bucket, tag, seq)
        SELECT a.seq >> 10, n.id, a.seq FROM audit a
            JOIN audit_names n ON n.col = 'kind' AND n.name = a.kind
        UNION ALL SELECT a.seq >> 10, n.id, a.seq FROM audit a
            JOIN audit_names n ON n.col = 'runbook' AND n.name = a.runbook
        UNION ALL SELECT a.seq >> 10, n.id, a.seq FROM audit a
            JOIN audit_names n ON n.col = 'target' AND n.name = a.target
        UNION ALL SELECT a.seq >> 10, n.id, a.seq FROM audit a
            JOIN audit_names n ON n.col = 'actor' AND n.name = a.actor;
    "#,
    // 4: what a restart needs to bring every open action, firing alert and
    // silence back as it was (rule 13): each action's phase (its state in
    // the engine's terms), severity, block reason, deadline, approver and
    // requester; each alert's source and action; the active silences. The
    // store rebuilds these columns from the trail after this migration.
    r#"
    ALTER TABLE actions ADD COLUMN phase TEXT;
    ALTER TABLE actions ADD COLUMN severity TEXT;
    ALTER TABLE actions ADD COLUMN reason TEXT;
    ALTER TABLE actions ADD COLUMN due_at TEXT;
    ALTER TABLE actions ADD COLUMN approved_by TEXT;
    ALTER TABLE actions ADD COLUMN requested_by TEXT;
    CREATE INDEX actions_live ON actions(first_seq)
        WHERE phase NOT IN ('done', 'rejected', 'expired', 'escalated', 'cancelled');

    ALTER TABLE alerts ADD COLUMN source TEXT;
    ALTER TABLE alerts ADD COLUMN action_id TEXT;
    CREATE INDEX alerts_firing ON alerts(seq) WHERE status = 'firing';

    CREATE TABLE silences (
        fingerprint TEXT PRIMARY KEY,
        silence_id  TEXT,
        until       TEXT NOT NULL,
        actor       TEXT,
        comment     TEXT,
        seq         INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The first schema version whose derived state a restart can resume from
/// (older trails are rebuilt once after migrating).
pub(crate) const RESUMABLE_VERSION: i64 = 4;

/// `audit_tags.bucket` is `seq >> BUCKET_SHIFT` (migration 3 writes 10).
pub(crate) const BUCKET_SHIFT: u32 = 10;

/// The audit columns that filters select by, in `audit_names.col`.
pub(crate) const TAG_COLS: [&str; 4] = ["kind", "runbook", "target", "actor"];

/// The schema version this build writes and understands.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}
