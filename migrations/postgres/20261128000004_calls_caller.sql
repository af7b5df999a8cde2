-- The screen pop lists a caller's earlier calls.
CREATE INDEX calls_caller ON calls (caller, id);
