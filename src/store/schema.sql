-- The schema a new database gets, in one batch: what MIGRATIONS in
-- src/store/mod.rs leave on an empty database, statement for statement
-- (their text as SQLite keeps it in sqlite_master, so the two are the
-- same; the test a_new_database_has_the_schema_its_migrations_make
-- compares them). A new migration changes this file too.
CREATE TABLE servers (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        backup INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        since_ms INTEGER,
        last_cause TEXT,
        check_health INTEGER,
        check_of INTEGER,
        check_state TEXT,
        check_reason TEXT,
        last_request_ms INTEGER,
        updated_ms INTEGER NOT NULL, op TEXT, admin TEXT, check_json TEXT, check_before INTEGER, from_check INTEGER, last_state_ms INTEGER,
        PRIMARY KEY (host, backend, server)
    ) WITHOUT ROWID;
CREATE TABLE "transitions" (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        cause TEXT,
        pattern TEXT NOT NULL,
        check_json TEXT,
        nth INTEGER NOT NULL DEFAULT 0
    );
CREATE INDEX transitions_at ON transitions (at_ms);
CREATE UNIQUE INDEX transitions_once ON transitions (host, backend, server, at_ms, to_state, nth);
CREATE TABLE backends (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        active INTEGER,
        backups INTEGER,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (host, backend)
    ) WITHOUT ROWID;
CREATE TABLE checkpoints (
        path TEXT PRIMARY KEY,
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    , cursor TEXT, decoded INTEGER, head_len INTEGER, head_hash INTEGER) WITHOUT ROWID;
CREATE TABLE no_server_periods (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        PRIMARY KEY (host, backend, start_ms)
    ) WITHOUT ROWID;
CREATE TABLE alerts (
        fingerprint TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        rule TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        ends_ms INTEGER,
        alert_json TEXT NOT NULL, notified_ms INTEGER,
        PRIMARY KEY (fingerprint, starts_ms)
    ) WITHOUT ROWID;
CREATE INDEX alerts_status ON alerts (status);
CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_ms INTEGER,
        UNIQUE (sink, fingerprint, starts_ms, status)
    );
CREATE INDEX outbox_due ON outbox (state, next_ms);
CREATE TABLE rules_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL
    );
CREATE TABLE held_lines (
        seq INTEGER PRIMARY KEY,
        line BLOB NOT NULL
    );
CREATE TABLE skewed (
        id INTEGER PRIMARY KEY,
        received_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        event_ms INTEGER NOT NULL,
        line TEXT NOT NULL
    );
CREATE TABLE checks (
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        result TEXT,
        check_json TEXT NOT NULL,
        UNIQUE (host, backend, server, at_ms, check_json)
    );
CREATE INDEX checks_at ON checks (at_ms);
CREATE TABLE process_events (
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        event TEXT NOT NULL,
        proxy TEXT NOT NULL,
        message TEXT NOT NULL,
        UNIQUE (host, at_ms, message)
    );
CREATE INDEX process_events_at ON process_events (at_ms);
CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        last_event_ms INTEGER NOT NULL,
        offset_ms INTEGER,
        reference TEXT NOT NULL
    ) WITHOUT ROWID;
CREATE TABLE "rollups" (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        -- JSON object: termination state -> count
        terminations TEXT NOT NULL,
        -- HdrHistogram V2 encodings of Tw, Tr and Tt (milliseconds)
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (minute_ms, host, backend, server)
    ) WITHOUT ROWID;
CREATE INDEX rollups_server ON rollups (host, backend, server, minute_ms);
CREATE TABLE "backend_rollups" (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        -- 503s HAProxy answered itself (`<NOSRV>`'s 5xx)
        nosrv_5xx INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        terminations TEXT NOT NULL,
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (minute_ms, host, backend)
    ) WITHOUT ROWID;
