"""Pure stages: raw bytes and plain records in, plain records out. No Prefect, no DuckDB.

ingest (discover, hash, sidecars) -> formats and decode (bytes to documents) -> repair and
clean (encoding repair, line rules, blocks, every removal audited) -> segment (sentences with
offsets) -> language; `document` composes them into one document's rows, `version` hashes
what shapes those rows, `records` and `rules` are the vocabulary and the catalogues (as data).
Modules here import only each other.
"""
