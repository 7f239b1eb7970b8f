#!/usr/bin/env python3
"""Assemble the corpus of real pipeline definitions and buildspecs (issue 17) beside the project.

The files are third-party: they are not committed. corpus/SOURCES.tsv names each one (repository,
commit, path, and for a code block of a Markdown page its index) with its licence and SHA-256.
This script copies them byte for byte into DEST (default: ../shared/corpus, where the corpus tests
look; MERIDIAN_CORPUS overrides both) as pipelines/<file> and buildspecs/<file>, with a SOURCES.md
giving their attribution.

Each repository is read from a local bare mirror when one exists (--mirrors DIR, a directory of
`owner+name` mirrors), or else cloned once, blobs on demand, from GitHub into ~/.cache/meridian-corpus.
A file whose SHA-256 differs from the manifest's is an error: the corpus is pinned.

The official CloudFormation sample templates (aws-cloudformation/aws-cloudformation-templates,
Apache-2.0) that crates/meridian-template/tests/cfn_samples.tsv lists go the same way, with
the repository's LICENSE.txt and NOTICE.txt, into --cfn-samples DIR (default
../shared/cfn-samples; MERIDIAN_CFN_SAMPLES overrides both).

    python3 scripts/corpus.py [--mirrors DIR] [--cfn-samples DIR] [DEST]
"""
import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_REPO = "aws-cloudformation/aws-cloudformation-templates"
SAMPLES_COMMIT = "142ce6f283d285fa370adb7f9d332d7f46dac5fc"


def blocks(text):
    """The fenced code blocks of a Markdown page, in order."""
    out, cur = [], None
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            if cur is None:
                cur = []
            else:
                out.append("\n".join(cur) + "\n")
                cur = None
        elif cur is not None:
            cur.append(line)
    return out


def git_dir(repo, mirrors, cache):
    if mirrors:
        base = Path(mirrors) / repo.replace("/", "+") / "repo"
        if (base / ".git").is_dir():
            return base / ".git"
        if base.is_dir():
            return base
    target = cache / repo.replace("/", "+")
    if not target.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", "--filter=blob:none",
             f"https://github.com/{repo}.git", str(target)],
            check=True,
        )
    return target


def show(gd, commit, path):
    def run():
        return subprocess.run(["git", "--git-dir", str(gd), "show", f"{commit}:{path}"], capture_output=True)

    r = run()
    if r.returncode != 0:  # a clone may lack the pinned commit: fetch it once
        subprocess.run(["git", "--git-dir", str(gd), "fetch", "--quiet", "origin", commit], capture_output=True)
        r = run()
    if r.returncode != 0:
        sys.exit(f"corpus: cannot read {path} at {commit} in {gd}: {r.stderr.decode().strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest", nargs="?", default=os.environ.get("MERIDIAN_CORPUS", str(ROOT.parent / "shared" / "corpus")))
    ap.add_argument("--mirrors", default=os.environ.get("MERIDIAN_MIRRORS", "/work/.mirror"))
    ap.add_argument(
        "--cfn-samples",
        default=os.environ.get("MERIDIAN_CFN_SAMPLES", str(ROOT.parent / "shared" / "cfn-samples")),
    )
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "meridian-corpus"))
    args = ap.parse_args()
    mirrors = args.mirrors if args.mirrors and Path(args.mirrors).is_dir() else None
    dest = Path(args.dest)
    rows = [l.split("\t") for l in (ROOT / "corpus" / "SOURCES.tsv").read_text().splitlines()[1:] if l]
    attribution = ["# Corpus of real pipeline definitions and buildspecs", "",
                   "Copied byte for byte by scripts/corpus.py (code blocks of Markdown pages extracted).", "",
                   "| file | origin | licence |", "|---|---|---|"]
    for kind, name, repo, commit, path, block, licence, sha in rows:
        data = show(git_dir(repo, mirrors, Path(args.cache)), commit, path)
        if block:
            data = blocks(data.decode())[int(block)].encode()
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            sys.exit(f"corpus: {kind}/{name} has SHA-256 {got}, the manifest says {sha}")
        out = dest / kind / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        where = f"{repo}, {path}" + (f" (code block {block})" if block else "") + f" @ {commit}"
        attribution.append(f"| {kind}/{name} | {where} | {licence} |")
    (dest / "SOURCES.md").write_text("\n".join(attribution) + "\n")
    print(f"corpus: {len(rows)} files in {dest}")

    samples = Path(args.cfn_samples)
    listed = (ROOT / "crates" / "meridian-template" / "tests" / "cfn_samples.tsv").read_text().splitlines()
    paths = [l.split("\t")[0] for l in listed if l and not l.startswith("#")]
    gd = git_dir(SAMPLES_REPO, mirrors, Path(args.cache))
    for path in paths + ["LICENSE.txt", "NOTICE.txt"]:
        out = samples / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(show(gd, SAMPLES_COMMIT, path))
    print(f"corpus: {len(paths)} CloudFormation sample templates in {samples}")


if __name__ == "__main__":
    main()
