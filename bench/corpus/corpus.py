"""The validation corpus: public training repositories, pinned by commit, split into two halves.

Usage:
  python bench/corpus/corpus.py check
  python bench/corpus/corpus.py fetch  [--cache DIR] [--mirror-root DIR] [--half H]
  python bench/corpus/corpus.py export --dir DIR [--cache DIR] [--mirror-root DIR] [--half H]
  python bench/corpus/corpus.py measure --dir DIR --half H [--dllint CMD] [--triage FILE]
                                        [--untriaged] [--json FILE]
  python bench/corpus/corpus.py compare BEFORE.json AFTER.json [--triage FILE]

`fetch` clones each pinned repository (or finds it in a local directory of bare mirrors,
`<root>/<owner>+<name>/repo`) into a cache outside this repository; `export` writes the *.py
files of each pinned commit, and the code cells of each *.ipynb as `<notebook>.ipynb.py`, into
`<dir>/<half>/<owner>/<name>/...`; `measure` lints one half with any dllint command and joins
the findings with the triage file. Standard library only; the code is never committed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "manifest.toml")
TRIAGE = os.path.join(HERE, "triage.txt")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "dllint-corpus")
HALVES = ("tuning", "validation")
VERDICTS = ("true", "false-alarm", "harmless")
KINDS = (
    "research-detection", "research-diffusion", "research-nlp", "research-rl",
    "research-self-supervised", "research-vision", "research-generative",
    "tutorial", "framework-examples", "framework-user", "beginner",
)
MIN_PER_HALF = 20
COMMIT = re.compile(r"^[0-9a-f]{40}$")
UNPARSEABLE = "DL000"


class CorpusError(Exception):
    """A one-line message for the user: bad manifest, bad triage file, failed git or dllint."""


# ---------------------------------------------------------------------------- manifest


def load_manifest(path=MANIFEST, min_per_half=MIN_PER_HALF):
    """Read and validate the manifest; return its list of repository entries."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CorpusError(f"{path}: {error}") from None
    return validate_manifest(data, min_per_half)


def validate_manifest(data, min_per_half=MIN_PER_HALF):
    repos = data.get("repo")
    if not isinstance(repos, list) or not repos:
        raise CorpusError("manifest: no [[repo]] entries")
    seen = set()
    tuning_only = set(data.get("tuning_only", []))
    per_half = collections.Counter()
    for index, repo in enumerate(repos):
        name = repo.get("name", "")
        where = f"manifest: repo #{index + 1} ({name or 'unnamed'})"
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name):
            raise CorpusError(f"{where}: name must be owner/name")
        if name.lower() in seen:
            raise CorpusError(f"{where}: listed twice")
        seen.add(name.lower())
        if not COMMIT.match(repo.get("commit", "")):
            raise CorpusError(f"{where}: commit must be 40 lowercase hex digits")
        if repo.get("kind") not in KINDS:
            raise CorpusError(f"{where}: kind must be one of {', '.join(KINDS)}")
        half = repo.get("half")
        if half not in HALVES:
            raise CorpusError(f"{where}: half must be tuning or validation")
        if half == "validation" and name in tuning_only:
            raise CorpusError(f"{where}: used by earlier precision work, so it may only be in tuning")
        paths = repo.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise CorpusError(f"{where}: paths must be a list of folders")
        unknown = set(repo) - {"name", "commit", "kind", "half", "paths"}
        if unknown:
            raise CorpusError(f"{where}: unknown field {sorted(unknown)[0]}")
        per_half[half] += 1
    for half in HALVES:
        if per_half[half] < min_per_half:
            raise CorpusError(f"manifest: the {half} half has {per_half[half]} repositories, fewer than {min_per_half}")
    return repos


def select(repos, half):
    return [r for r in repos if half in (None, r["half"])]


# ---------------------------------------------------------------------------- triage


Verdict = collections.namedtuple("Verdict", "half path line code verdict reason")


def load_triage(path=TRIAGE):
    """Parse `half:owner/name/path:line:code:verdict:reason` lines ('#' comments, blank lines allowed)."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return parse_triage(handle.read().splitlines(), path)


def parse_triage(lines, source="triage"):
    triage = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":", 5)
        where = f"{source}:{number}"
        if len(parts) != 6:
            raise CorpusError(f"{where}: expected half:path:line:code:verdict:reason")
        half, path, line_no, code, verdict, reason = parts
        if half not in HALVES:
            raise CorpusError(f"{where}: half must be tuning or validation")
        if not line_no.isdigit():
            raise CorpusError(f"{where}: line must be a number")
        if not re.fullmatch(r"DL\d{3}", code):
            raise CorpusError(f"{where}: code must look like DL101")
        if verdict not in VERDICTS:
            raise CorpusError(f"{where}: verdict must be one of {', '.join(VERDICTS)}")
        if not reason.strip():
            raise CorpusError(f"{where}: a one-line reason is required")
        key = (half, path, int(line_no), code)
        if key in triage:
            raise CorpusError(f"{where}: {path}:{line_no}:{code} triaged twice")
        triage[key] = Verdict(half, path, int(line_no), code, verdict, reason.strip())
    return triage


# ---------------------------------------------------------------------------- git


def git(*args, capture=True):
    try:
        result = subprocess.run(["git", *args], capture_output=capture, check=False)
    except OSError as error:
        raise CorpusError(f"git: {error}") from None
    if result.returncode != 0:
        message = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        raise CorpusError(f"git {' '.join(args[:3])}: {message[-1] if message else 'failed'}")
    return result.stdout


def mirror_dir(repo, mirror_root):
    return os.path.join(mirror_root, repo["name"].replace("/", "+"), "repo")


def cache_dir(repo, cache):
    return os.path.join(cache, repo["name"].replace("/", "+") + ".git")


def has_commit(git_dir, commit):
    if not os.path.isdir(git_dir):
        return False
    probe = subprocess.run(["git", "--git-dir", git_dir, "cat-file", "-e", commit + "^{commit}"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def locate(repo, cache, mirror_root):
    """The git directory holding the pinned commit, or None."""
    candidates = [mirror_dir(repo, mirror_root)] if mirror_root else []
    candidates.append(cache_dir(repo, cache))
    return next((d for d in candidates if has_commit(d, repo["commit"])), None)


def fetch(repos, cache, mirror_root):
    for repo in repos:
        if locate(repo, cache, mirror_root):
            print(f"have    {repo['name']} {repo['commit'][:12]}")
            continue
        target = cache_dir(repo, cache)
        if not os.path.isdir(target):
            git("init", "--bare", "-q", target)
        url = f"https://github.com/{repo['name']}.git"
        git("--git-dir", target, "fetch", "-q", "--depth", "1", url, repo["commit"])
        print(f"fetched {repo['name']} {repo['commit'][:12]}")


# ---------------------------------------------------------------------------- export


def notebook_to_script(text):
    """The code cells of a notebook as one script; IPython magics and shell lines become comments."""
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return None
    chunks = []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        lines = [("# " + line) if line.lstrip().startswith(("%", "!", "?")) else line
                 for line in source.splitlines()]
        chunks.append(f"# %% cell {number}\n" + "\n".join(lines) + "\n")
    return "\n".join(chunks)


def export_repo(repo, git_dir, out_dir):
    """Write the repository's .py files (and notebooks as scripts) under out_dir; return the count."""
    listing = git("--git-dir", git_dir, "ls-tree", "-r", "-z", repo["commit"], "--", *repo.get("paths", []))
    blobs = []
    for entry in listing.decode("utf-8", errors="surrogateescape").split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000" and path.endswith((".py", ".ipynb")):
            blobs.append((sha, path))
    contents = cat_blobs(git_dir, [sha for sha, _ in blobs])
    written = 0
    for (sha, path), data in zip(blobs, contents):
        if data is None:
            continue
        if path.endswith(".ipynb"):
            script = notebook_to_script(data.decode("utf-8", errors="replace"))
            if script is None:
                continue
            data, path = script.encode(), path + ".py"
        target = os.path.join(out_dir, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
        written += 1
    return written


def cat_blobs(git_dir, shas):
    """Read many blobs with one `git cat-file --batch`."""
    if not shas:
        return []
    result = subprocess.run(["git", "--git-dir", git_dir, "cat-file", "--batch"],
                            input=("\n".join(shas) + "\n").encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise CorpusError(f"git cat-file in {git_dir}: failed")
    out, position, contents = result.stdout, 0, []
    for _ in shas:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        if header[-1] == b"missing":  # a snapshot may lack its largest files
            contents.append(None)
            position = header_end + 1
            continue
        size = int(header[2])
        contents.append(out[header_end + 1:header_end + 1 + size])
        position = header_end + 1 + size + 1
    return contents


def export(repos, out_root, cache, mirror_root):
    for repo in repos:
        git_dir = locate(repo, cache, mirror_root)
        if git_dir is None:
            raise CorpusError(f"{repo['name']}: commit {repo['commit'][:12]} not fetched; run `fetch` first")
        target = os.path.join(out_root, repo["half"], *repo["name"].split("/"))
        if os.path.isdir(target) and os.listdir(target):
            raise CorpusError(f"{target} is not empty; export into a fresh directory")
        count = export_repo(repo, git_dir, target)
        print(f"exported {count:5d} files  {repo['half']:10s} {repo['name']}")


# ---------------------------------------------------------------------------- measure


def source_size(half_dir):
    """(files, lines) of the exported sources of one half."""
    files = lines = 0
    for folder, subdirs, names in os.walk(half_dir):
        subdirs.sort()
        for name in names:
            if name.endswith(".py"):
                files += 1
                with open(os.path.join(folder, name), "rb") as handle:
                    lines += sum(1 for _ in handle)
    return files, lines


def run_dllint(command, half_dir):
    """Run `command` (e.g. `dllint check --format json --no-cache --isolated`) on one half."""
    argv = shlex.split(command) + ["."]
    try:
        result = subprocess.run(argv, cwd=half_dir, capture_output=True, check=False)
    except OSError as error:
        raise CorpusError(f"cannot run dllint: {error}") from None
    try:
        findings = json.loads(result.stdout.decode())
    except ValueError:
        tail = result.stderr.decode(errors="replace").strip().splitlines()
        raise CorpusError(f"dllint gave no JSON (exit {result.returncode}): {tail[-1] if tail else ''}") from None
    return findings


def normalise(path):
    path = path.replace(os.sep, "/")
    return path[2:] if path.startswith("./") else path


def tally(findings, triage, half):
    """Join findings with the triage file: per-rule counts of findings and verdicts.

    Returns (rules, untriaged, stale, unparseable): rules maps code -> Counter with `findings` and
    each verdict or `untriaged`; untriaged lists the findings without a verdict; stale the triage
    entries of this half that no finding matches any more; unparseable counts DL000 files, which
    are reported apart (third-party Python 2 code is not a finding about training).
    """
    rules = collections.defaultdict(collections.Counter)
    untriaged, matched, unparseable = [], set(), 0
    for finding in findings:
        code = finding["code"]
        if code == UNPARSEABLE:
            unparseable += 1
            continue
        key = (half, normalise(finding["path"]), int(finding["line"]), code)
        rules[code]["findings"] += 1
        verdict = triage.get(key)
        if verdict is None:
            rules[code]["untriaged"] += 1
            untriaged.append(finding)
        else:
            rules[code][verdict.verdict] += 1
            matched.add(key)
    stale = [v for k, v in sorted(triage.items()) if k[0] == half and k not in matched]
    return dict(rules), untriaged, stale, unparseable


def precision(counts):
    triaged = sum(counts[v] for v in VERDICTS)
    return counts["true"] / triaged if triaged else None


def report(half, files, lines, rules, untriaged, stale, unparseable):
    kloc = lines / 1000
    out = [f"{half}: {files} files, {kloc:.1f} KLOC, {unparseable} unparseable (DL000, not counted)"]
    header = f"{'rule':7s} {'findings':>8s} {'/KLOC':>7s} {'true':>5s} {'false':>6s} {'harmless':>8s} {'untriaged':>9s} {'precision':>9s}"
    out.append(header)
    total = collections.Counter()
    for code in sorted(rules) + ["total"]:
        counts = rules.get(code) or total
        if code != "total":
            total.update(counts)
        share = precision(counts)
        out.append(f"{code:7s} {counts['findings']:8d} {counts['findings'] / kloc if kloc else 0:7.3f} "
                   f"{counts['true']:5d} {counts['false-alarm']:6d} {counts['harmless']:8d} "
                   f"{counts['untriaged']:9d} {'-' if share is None else f'{share:.0%}':>9s}")
    if stale:
        out.append(f"{len(stale)} triage entries of this half match no finding any more (fixed or moved)")
    return "\n".join(out)


def measure(args):
    half_dir = os.path.join(args.dir, args.half)
    if not os.path.isdir(half_dir):
        raise CorpusError(f"{half_dir} does not exist; run `export --dir {args.dir}` first")
    findings = run_dllint(args.dllint, half_dir)
    triage = load_triage(args.triage)
    files, lines = source_size(half_dir)
    rules, untriaged, stale, unparseable = tally(findings, triage, args.half)
    print(report(args.half, files, lines, rules, untriaged, stale, unparseable))
    if args.untriaged:
        for finding in untriaged:
            print(f"{args.half}:{normalise(finding['path'])}:{finding['line']}:{finding['code']}:?:{finding['message']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"half": args.half, "files": files, "lines": lines, "unparseable": unparseable,
                       "rules": rules, "stale": [v._asdict() for v in stale],
                       "findings": findings}, handle, indent=1)


def compare(before, after, triage):
    """A markdown table of two `measure --json` runs of one half, both joined with the same triage."""
    if before["half"] != after["half"]:
        raise CorpusError(f"cannot compare the {before['half']} half with the {after['half']} half")
    half = before["half"]
    tallies = [tally(run["findings"], triage, half)[0] for run in (before, after)]
    kloc = after["lines"] / 1000

    def cell(counts):
        if not counts["findings"]:
            return "0"
        parts = [f"{counts['true']} / {counts['false-alarm']} / {counts['harmless']}"]
        if counts["untriaged"]:
            parts.append(f"{counts['untriaged']} untriaged")
        return f"{counts['findings']} ({', '.join(parts)})"

    rows = ["| rule | before: findings (true / false alarm / harmless) | after |", "|---|---|---|"]
    totals = [collections.Counter(), collections.Counter()]
    for code in sorted(set(tallies[0]) | set(tallies[1])):
        counts = [t.get(code, collections.Counter()) for t in tallies]
        for total, count in zip(totals, counts):
            total.update(count)
        rows.append(f"| {code} | {cell(counts[0])} | {cell(counts[1])} |")
    rows.append(f"| **total** | **{cell(totals[0])}** | **{cell(totals[1])}** |")
    rates = [f"{t['findings'] / kloc:.3f}" for t in totals]
    shares = ["-" if precision(t) is None else f"{precision(t):.0%}" for t in totals]
    rows.append(f"| per KLOC | {rates[0]} | {rates[1]} |")
    rows.append(f"| true share | {shares[0]} | {shares[1]} |")
    return f"{half}: {after['files']} files, {kloc:.1f} KLOC\n\n" + "\n".join(rows)


# ---------------------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(prog="corpus.py", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", default=MANIFEST)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate the manifest and the triage file")
    for name in ("fetch", "export"):
        sub = commands.add_parser(name)
        sub.add_argument("--cache", default=DEFAULT_CACHE, help="where clones live (outside this repository)")
        sub.add_argument("--mirror-root", help="a directory of bare mirrors <owner>+<name>/repo to use first")
        sub.add_argument("--half", choices=HALVES)
        if name == "export":
            sub.add_argument("--dir", required=True, help="where to write <half>/<owner>/<name>/...")
    sub = commands.add_parser("measure")
    sub.add_argument("--dir", required=True, help="the directory `export` wrote")
    sub.add_argument("--half", choices=HALVES, required=True)
    sub.add_argument("--dllint", default="dllint check --format json --no-cache --isolated",
                     help="the dllint command, printing JSON findings for the path appended to it")
    sub.add_argument("--triage", default=TRIAGE)
    sub.add_argument("--untriaged", action="store_true", help="also list the findings without a verdict")
    sub.add_argument("--json", help="write counts and findings to this file")
    sub = commands.add_parser("compare", help="before/after table of two `measure --json` files")
    sub.add_argument("before")
    sub.add_argument("after")
    sub.add_argument("--triage", default=TRIAGE)
    args = parser.parse_args(argv)
    try:
        repos = load_manifest(args.manifest)
        if args.command == "check":
            triage = load_triage()
            print(f"manifest: {len(repos)} repositories "
                  f"({', '.join(f'{h} {len(select(repos, h))}' for h in HALVES)}); triage: {len(triage)} verdicts")
        elif args.command == "fetch":
            fetch(select(repos, args.half), args.cache, args.mirror_root)
        elif args.command == "export":
            export(select(repos, args.half), args.dir, args.cache, args.mirror_root)
        elif args.command == "compare":
            runs = []
            for path in (args.before, args.after):
                try:
                    with open(path, encoding="utf-8") as handle:
                        runs.append(json.load(handle))
                except (OSError, ValueError) as error:
                    raise CorpusError(f"{path}: {error}") from None
            print(compare(*runs, load_triage(args.triage)))
        else:
            measure(args)
    except CorpusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
