-- Seats managed by the API and `hotline agents`, next to the config's
-- [[seat]] list (a config seat wins an id clash).
CREATE TABLE seats (
    id          TEXT    PRIMARY KEY,
    -- The digest password as given: the registrar answers SHA-256 and MD5
    -- challenges (RFC 8760) from it, so a one-way hash of one algorithm
    -- would lock out phones using the other.
    password    TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    -- JSON object: skill -> proficiency 1-10.
    skills      TEXT    NOT NULL DEFAULT '{}',
    -- JSON array of language codes.
    languages   TEXT    NOT NULL DEFAULT '[]',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
