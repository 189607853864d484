-- The cookbook: research queries that run as written in `corpus sql` (or `corpus shell`), where
-- every table is visible by name. Each query starts with a `-- name:` line; README.md shows each
-- with its output on the sample build (`make demo`), and tests/test_cookbook.py runs them all.
-- Regenerate the README section with: python -m flows.cookbook WAREHOUSE

-- name: Sentences per source and year
-- The year a document was published, else the year it was fetched; latest versions only.
SELECT s.source_id, year(coalesce(d.published, d.fetched)) AS year, count(*) AS sentences
FROM sentences s JOIN documents d USING (doc_id)
WHERE d.is_latest
GROUP BY ALL
ORDER BY source_id, year;

-- name: Comment vs article language
SELECT CASE WHEN section = 'comment' THEN 'comment' ELSE 'article' END AS part,
       coalesce(lang, '(none)') AS language, count(*) AS sentences,
       round(100 * count(*) / sum(count(*)) OVER (PARTITION BY part), 1) AS pct_of_part
FROM sentences
GROUP BY part, language
ORDER BY part, sentences DESC, language;

-- name: Most frequent removed-line rules per source
-- The three rules that removed most lines in each source.
SELECT source_id, rule, count(*) AS lines
FROM removed
GROUP BY source_id, rule
QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY count(*) DESC, rule) <= 3
ORDER BY source_id, lines DESC, rule;

-- name: A concordance of "socialism in one country"
-- Cut from the stored clean text by offsets (`corpus kwic "socialism in one country"` does the
-- same, aligned). strpos is 1-based; char_start is 0-based.
WITH hits AS (
    SELECT s.doc_id, s.char_start + strpos(lower(s.text), 'socialism in one country') - 1 AS pos
    FROM sentences s
    WHERE lower(s.text) LIKE '%socialism in one country%'
)
SELECT d.source_id,
       substr(d.clean_text, greatest(pos - 30, 0) + 1, pos - greatest(pos - 30, 0)) AS left_context,
       substr(d.clean_text, pos + 1, 24) AS match,
       substr(d.clean_text, pos + 25, 30) AS right_context
FROM hits JOIN documents d USING (doc_id)
ORDER BY d.source_id, pos;

-- name: Sentence length distribution
SELECT least(n_words // 10 * 10, 60) AS words_from, count(*) AS sentences,
       bar(count(*), 0, max(count(*)) OVER (), 30) AS chart
FROM sentences
GROUP BY ALL
ORDER BY words_from;

-- name: Documents changed between two snapshots
-- DuckLake's change feed between two snapshot ids from `corpus versions` (here 0, the empty
-- warehouse, and 1, the sample's run): inserted, deleted and updated rows (an update shows its
-- pre- and post-image: the run set version flags on rows it had just inserted).
SELECT change_type, count(*) AS rows, count(DISTINCT doc_id) AS documents
FROM lake.table_changes('documents', 0, 1)
GROUP BY ALL
ORDER BY change_type;

-- name: Documents per input format and encoding
SELECT format, encoding, count(*) AS documents, count(DISTINCT page_id) AS pages
FROM documents
GROUP BY ALL
ORDER BY format, encoding;

-- name: Pages read more than once
-- One page_id, several documents: which one is the latest, and which are copies of another.
SELECT d.title, d.raw_path, d.raw_record, d.fetched, d.is_latest, o.raw_path AS copy_of
FROM documents d LEFT JOIN documents o ON d.duplicate_of = o.doc_id
WHERE d.page_id IN (SELECT page_id FROM documents GROUP BY page_id HAVING count(*) > 1)
ORDER BY d.title, d.raw_path, d.raw_record;

-- name: Busiest comment threads
SELECT d.title, count(*) AS comment_sentences, count(DISTINCT s.comment_author) AS authors
FROM sentences s JOIN documents d USING (doc_id)
WHERE s.section = 'comment'
GROUP BY ALL
ORDER BY comment_sentences DESC, d.title
LIMIT 5;

-- name: Where the text of each document went
-- Lines kept in the clean text vs removed by a rule, per document.
SELECT d.source_id, d.raw_path, d.n_lines, d.n_removed_lines,
       round(100 * d.n_removed_lines / d.n_lines, 1) AS pct_removed, d.n_sentences
FROM documents d
WHERE d.is_latest
ORDER BY pct_removed DESC, d.raw_path
LIMIT 8;

-- name: Longest sentences with their place in the document
SELECT source_id, n_words, char_start, char_end, left(text, 50) AS starts_with
FROM sentences
ORDER BY n_words DESC, sentence_id
LIMIT 5;

-- name: The warehouse as of an earlier snapshot
-- Time travel: any table AT (VERSION => N) reads it as snapshot N left it (ids from
-- `corpus versions`); here the first run's snapshot beside the newest.
SELECT (SELECT min(snapshot_id) FROM runs) AS first_run_snapshot,
       (SELECT count(*) FROM sentences AT (VERSION => 1)) AS sentences_then,
       (SELECT count(*) FROM sentences) AS sentences_now;
