"""`rag eval`: a question set (or a dataset with its own scratch index) through the Pipeline, then the report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import BadInput
from rag.evaluation.report import grouped, other_metrics, show, write_outputs
from rag.evaluation.runner import dataset_pipeline, load_questions, precision_coverage, run
from rag.language import rules


def run_cli(args, settings: Settings) -> int:
    if bool(args.questions) == bool(args.dataset):
        raise BadInput("Give exactly one of --questions FILE or --dataset DIR.")
    if args.baseline and not (Path(args.baseline) / "metrics.json").is_file():
        raise BadInput(f"--baseline {args.baseline} holds no metrics.json from an earlier `rag eval --out`.")
    try:
        rules.disable_everywhere(args.ablate or [])
    except ValueError as e:
        raise BadInput(str(e)) from None
    progress = not args.json
    # Every answer carries its best short answer and its probability, so the precision-coverage curve can be
    # drawn; the product's threshold decides which count as shown.
    settings = settings.model_copy(update={"short_answer_threshold": 0.0})
    extra: dict[str, Any] = {}
    if args.dataset:
        pipeline, report = dataset_pipeline(Path(args.dataset), settings, progress)
        extra = {
            "index_seconds": round(report.seconds, 1),
            "index_added": report.added + report.updated,
            "index_chunks_added": report.chunks,
        }
        qpath = Path(args.dataset) / "questions.jsonl"
    else:
        from rag.pipeline import Pipeline

        pipeline = Pipeline(settings)
        qpath = Path(args.questions)
    questions = load_questions(qpath)[: args.limit] if args.limit else load_questions(qpath)
    pipeline.warm_up()
    threshold = pipeline.parts.reader.thresholds.short_answer
    started = time.perf_counter()
    rows, metrics = run(pipeline, questions, threshold, use_as_of=args.use_as_of, progress=progress)
    metrics = {
        **metrics,
        **extra,
        "eval_seconds": round(time.perf_counter() - started, 1),
        "as_of": bool(args.use_as_of),
        "questions_file": str(qpath),
        "ablated": sorted(args.ablate or []),
    }
    titles = {a["id"]: a["title"] for a in pipeline.list_articles()}
    write_outputs(
        Path(args.out), metrics, rows, titles, precision_coverage(rows), Path(args.baseline) if args.baseline else None
    )
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        # Readable names, as in the report: "answer_em 0.0" read as a failure when no short answer was shown.
        for group in grouped(metrics, None):
            print(group["title"])
            for item in group["items"]:
                print(f"  {item['name']:52} {show(item['value'])}")
        for k, v in other_metrics(metrics).items():
            print(f"  {k:52} {show(v)}")
        print(f"wrote {args.out}/metrics.json, results.jsonl, report.md, report.html")
    return 0
