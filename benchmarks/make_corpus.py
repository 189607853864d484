"""Generate a realistic scraped corpus of a given size from real text, deterministically.

    python benchmarks/make_corpus.py OUT --mb 100 [--source ../shared/corpora/bbc_news_fulltext] [--seed 0]
    python benchmarks/make_corpus.py OUT --docs 2000

Real paragraphs (raw/sample by default, or every .txt under --source), each with one
sentence swapped for another real sentence so that no line repeats by accident, make up
documents of sites (raw/<site>/<year>/<doc>.txt, so the folder names the source) with the
artefacts the cleaner handles injected at the rates in RATES: site chrome (navigation,
newsletter and donation lines, a per-site footer that recurs in every document of the site),
photo captions with credits, captions repeated, datelines, WordPress comment threads with
attributions and an occasional spam comment, mojibake (UTF-8 read as cp1252) in some
paragraphs, documents saved in cp1252, exact duplicate files, and a few rejects (empty files,
PDFs saved as .txt). Same arguments and inputs, byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Per-document probabilities (per-paragraph for mojibake), chosen to look like a news/blog
# scrape: most documents are clean apart from chrome, a minority carries each artefact.
RATES = {
    "caption": 0.25,
    "repeated_caption": 0.10,
    "comments": 0.15,         # news sites
    "blog_comments": 0.6,
    "spam_comment": 0.2,      # of comment threads
    "mojibake_paragraph": 0.01,
    "cp1252_file": 0.02,
    "duplicate": 0.02,
    "reject": 0.002,
}
N_SITES = 24
MEDIAN_DOC_BYTES = 3000   # documents are log-normally sized around this
MONTHS = ("January February March April May June July August September October "
          "November December").split()
COMMENTERS = ["Rob", "Phil", "korakious", "charliemarks", "Ana", "J. Smith", "reader42", "Tomasz"]
SPAM = ["Great post! Check my youtube videos", "buy cheap replica watches here",
        "make money online click here"]


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    kind: str
    header: tuple[str, ...]
    footer: tuple[str, ...]


def load_paragraphs(source: Path) -> list[list[str]]:
    """Every .txt file under `source` as its list of non-blank lines, in sorted path order."""
    articles = []
    for path in sorted(source.rglob("*.txt")):
        if path.name.lower().startswith("readme") or path.name.startswith("_"):
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if len(line.strip()) > 1]
        if len(lines) >= 3:
            articles.append(lines)
    if not articles:
        sys.exit(f"make_corpus: no usable .txt files under {source}")
    return articles


def make_sites(rng: random.Random) -> list[Site]:
    sites = []
    words = ["Daily", "Weekly", "Red", "Northern", "Citizen", "Free", "Open", "Morning", "Labour", "Review"]
    nouns = ["Herald", "Voice", "Post", "Record", "Courier", "Journal", "Notes", "Blog", "Star", "Gazette"]
    for n in range(N_SITES):
        name = f"{rng.choice(words)} {rng.choice(nouns)} {n}"
        kind = "blog" if n % 4 == 3 else "news"
        header = ("Skip to content", "Menu", "Home", "Search") if kind == "news" else ("Skip to content",)
        footer = (
            f"Sign up for the {name} newsletter by email",
            f"Make a donation to {name}",
            f"{name} is published by {name} Media Ltd, registered in England no. {1000 + n * 37}.",
            f"Copyright {name} {2000 + n}. All rights reserved. Contact the editors at desk {n}.",
        )
        if kind == "blog":
            footer = ("Blog at WordPress.com.", f"Theme: {rng.choice(nouns)} by {name}.")
        sites.append(Site(f"site{n:02d}", name, kind, header, footer))
    return sites


@lru_cache(maxsize=1)
def _sentences(pool: tuple[str, ...]) -> list[str]:
    return [s for p in pool for s in _SENTENCE_END.split(p) if 20 <= len(s) <= 300]


def mojibake(text: str) -> str:
    """UTF-8 bytes read as cp1252: the commonest mojibake in scrapes (what ftfy undoes)."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


def comment_thread(rng: random.Random, pool: list[str]) -> list[str]:
    lines = []
    count = rng.randint(1, 6)
    lines += [f"{count} Comments so far", "Leave a comment"]
    for _ in range(count):
        lines += rng.sample(pool, k=rng.randint(1, 2))
        lines.append(f"Comment by {rng.choice(COMMENTERS)}")
    if rng.random() < RATES["spam_comment"]:
        lines += [rng.choice(SPAM), f"Comment by {rng.choice(COMMENTERS)}"]
    lines += ["Leave a Reply", "Post Comment"]
    return lines


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"\u201c])")


def recombined(rng: random.Random, paragraph: str, sentences: list[str]) -> str:
    """The paragraph with one sentence swapped for a random real one: a unique line, so a
    corpus many times larger than its source text does not turn into cross-document repeats."""
    own = _SENTENCE_END.split(paragraph)
    own[rng.randrange(len(own))] = rng.choice(sentences)
    if len(own) == 1:
        own.append(rng.choice(sentences))
    return " ".join(own)


def document(rng: random.Random, site: Site, articles: list[list[str]], pool: list[str]) -> str:
    target = int(rng.lognormvariate(0, 0.6) * MEDIAN_DOC_BYTES)
    article = rng.choice(articles)
    title, body = article[0], list(article[1:])
    while sum(len(p) + 2 for p in body) < target:  # long reads continue with another article
        body += rng.choice(articles)[1:]
    sentences = _sentences(tuple(pool))
    body = [recombined(rng, p, sentences) for p in body]
    body = [mojibake(p) if rng.random() < RATES["mojibake_paragraph"] else p for p in body]
    if rng.random() < RATES["caption"] and len(body) > 2:
        caption = f"{rng.choice(pool)[:120].rstrip('.')}. Public domain"
        at = rng.randint(1, len(body) - 1)
        body[at:at] = [caption, caption] if rng.random() < RATES["repeated_caption"] / RATES["caption"] else [caption]
    dateline = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(2005, 2024)}"
    lines = [*site.header, title, dateline, *body]
    if rng.random() < RATES["blog_comments" if site.kind == "blog" else "comments"]:
        lines += comment_thread(rng, pool)
    lines += site.footer
    return "\n\n".join(lines) + "\n"


def generate(out: Path, articles: list[list[str]], seed: int, max_docs: int | None, max_bytes: int | None) -> dict:
    rng = random.Random(seed)
    sites = make_sites(rng)
    pool = [p for a in articles for p in a[1:] if 40 <= len(p) <= 400] or [a[1] for a in articles]
    out.mkdir(parents=True, exist_ok=False)
    written = {"documents": 0, "bytes": 0, "duplicates": 0, "rejects": 0, "cp1252": 0}
    previous: list[tuple[Path, bytes]] = []
    n = 0
    while (max_docs is None or n < max_docs) and (max_bytes is None or written["bytes"] < max_bytes):
        site = sites[rng.randrange(len(sites))]
        year = rng.randint(2005, 2024)
        path = out / site.site_id / str(year) / f"doc{n:07d}.txt"
        roll = rng.random()
        if roll < RATES["reject"]:
            data = b"" if rng.random() < 0.5 else b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
            written["rejects"] += 1
        elif roll < RATES["reject"] + RATES["duplicate"] and previous:
            data = rng.choice(previous)[1]
            written["duplicates"] += 1
        else:
            text = document(rng, site, articles, pool)
            if rng.random() < RATES["cp1252_file"]:
                data = text.encode("cp1252", errors="replace")
                written["cp1252"] += 1
            else:
                data = text.encode("utf-8")
            if len(previous) < 512:
                previous.append((path, data))
            else:
                previous[rng.randrange(512)] = (path, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written["documents"] += 1
        written["bytes"] += len(data)
        n += 1
    sidecar = ["# Generated by benchmarks/make_corpus.py: one source per site folder.", ""]
    for site in sites:
        sidecar += [f"[sources.{site.site_id}]", f'name = "{site.name}"', f'kind = "{site.kind}"', ""]
    (out / "_sources.toml").write_text("\n".join(sidecar), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create (must not exist)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--docs", type=int, help="number of files to write")
    size.add_argument("--mb", type=float, help="approximate total size in MB (10^6 bytes)")
    parser.add_argument("--source", type=Path, default=ROOT / "raw" / "sample", help="folder of real .txt text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} already exists; choose a new folder")
    articles = load_paragraphs(args.source)
    written = generate(args.out, articles, args.seed, args.docs, int(args.mb * 1e6) if args.mb else None)
    print(json.dumps(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
