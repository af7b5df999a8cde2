-- Users of the HTTP API (agent desktop, unit portal, ops), managed by
-- `hotline users`. Only a SHA-256 of each bearer token is kept: a leaked
-- table does not let anyone in, and a lost token is replaced, not read back.
CREATE TABLE api_users (
    name        TEXT    PRIMARY KEY,
    -- agent, dispatcher, unit_handler, supervisor or admin.
    role        TEXT    NOT NULL,
    -- The unit of a unit handler; NULL for every other role.
    unit        TEXT    NULL,
    -- Lower-case hex SHA-256 of the token; looked up on every request.
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    -- Set while the user is disabled: its token is refused.
    disabled_at BIGINT  NULL
);
