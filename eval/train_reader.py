"""Train the span reader: the bundled all-MiniLM-L6-v2 fine-tuned for extractive question answering.

    python eval/train_reader.py --out runs/reader [--lora-rank 16] [--epochs 1] [--resume]
    python eval/train_reader.py --out runs/reader --ship rag/answer/readers/span_reader   # copy the result in

It starts from the bundled model's weights (their sha256 verified) as a BERT `AutoModelForQuestionAnswering`:
start and end logits per token, and "no answer" as the start and end both on [CLS], as SQuAD 2.0 models do.
- Stage 1: SQuADShifts (../shared/datasets/squadshifts-train, CC BY 4.0). A few percent of its paragraphs are
  kept aside for early stopping and dev figures, split by paragraph. Each question also meets, with a fixed
  probability, another paragraph of its own article, whose target is "no answer": the reader reads five
  passages for every question and must say where the answer is not.
- Stage 2: news, by distant supervision from the 2023-26 quiz queries of realtimeqa-news-scale (never the 2022
  dev questions): the window of a search document where the answer string occurs beside the most of the
  question's words is a positive; a window of the same documents without it, and the question with one of its
  names swapped for another, are "no answer". Only the queries whose id hashes into the training half are
  used; the other half is left for fitting the calibration, so that it never sees the reader's training data.
  Stage 1 examples are replayed beside them.
With `--lora-rank N` the encoder is frozen and LoRA adapters (peft) of rank N are trained on every linear layer,
with the QA head; `--lora-rank 0` fine-tunes every weight but the embeddings, which stay the verified model's.
What is written (`--out`): `reader.safetensors` (the adapter and head, or the changed weights, in float16),
`record.json` (the command, the data's sha256s, the seed, the wall time, the dev figures) and `train.log`.
Checkpoints are written as it goes; `--resume` continues an interrupted run from the last one, and `--init`
starts a new schedule (another epoch) from a finished run's checkpoint.

Training needs the `train` extra (peft); nothing here is imported when serving.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.hashing import file_sha256 as sha256  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
SHIFTS = DATASETS / "squadshifts-train"
SHIFTS_FILES = ("amazon_reviews_v1.0.json", "new_wiki_v1.0.json", "reddit_v1.0.json")
NEWS = DATASETS / "realtimeqa-news-scale"
XQUAD = DATASETS / "xquad-en-squad11-dev"
MAX_ANSWER_TOKENS = 30
# The linear layers of a BERT layer, by the names transformers gives them.
LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


@dataclass
class Example:
    qid: str
    question: str
    context: str
    answer_start: int  # -1: no answer in this context
    answer_text: str
    answers: list[str]
    group: str  # what the dev split and the news halves are drawn by: a paragraph, or a query


def share_of(key: str) -> float:
    """A stable number in [0, 1) for a key: splits that do not move when the data's order does."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


# ---- data -------------------------------------------------------------------------------------------------


def load_shifts(folder: Path, negative_rate: float, rng: random.Random) -> list[Example]:
    """SQuADShifts questions, first answer as the target; and, at ``negative_rate``, the same question against
    another paragraph of its article with no answer."""
    out: list[Example] = []
    for name in SHIFTS_FILES:
        data = json.loads((folder / name).read_text())["data"]
        for article in data:
            paragraphs = [p["context"] for p in article["paragraphs"]]
            for p in article["paragraphs"]:
                ctx = p["context"]
                group = hashlib.sha256(ctx.encode()).hexdigest()
                for qa in p["qas"]:
                    golds = [a["text"] for a in qa["answers"]]
                    first = qa["answers"][0]
                    out.append(
                        Example(qa["id"], qa["question"], ctx, first["answer_start"], first["text"], golds, group)
                    )
                    others = [o for o in paragraphs if o != ctx and not any(g and g in o for g in golds)]
                    if others and rng.random() < negative_rate:
                        out.append(Example(qa["id"] + "-neg", qa["question"], rng.choice(others), -1, "", golds, group))
    return out


STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "by",
        "with",
        "at",
        "from",
        "and",
        "or",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "does",
        "do",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "new",
        "said",
        "says",
        "week",
        "about",
        "after",
        "over",
        "into",
        "than",
        "then",
        "their",
        "there",
        "they",
        "he",
        "she",
        "his",
        "her",
        "him",
        "not",
        "no",
    ]
)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP and len(w) > 2}


def sentence_window(text: str, start: int, end: int, width: int = 700) -> tuple[int, int]:
    """About ``width`` characters around [start, end), cut at sentence ends or white space."""
    lo, hi = max(0, start - width // 2), min(len(text), end + width // 2)
    cut = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start))
    if cut >= lo:
        lo = cut + 1
    else:
        space = text.find(" ", lo)
        lo = space + 1 if 0 <= space < start else lo
    stop = [i for i in (text.find(". ", end), text.find("\n", end)) if i >= 0]
    if stop and min(stop) + 1 <= hi:
        hi = min(stop) + 1
    else:
        space = text.rfind(" ", end, hi)
        hi = space if space > end else hi
    while lo < start and text[lo].isspace():
        lo += 1
    return lo, hi


def load_news(folder: Path, rng: random.Random, half: str = "train") -> tuple[list[Example], dict]:
    """Distant news labels from the 2023-26 quiz queries, for the queries whose id falls in ``half``."""
    corpus = {}
    with open(folder / "corpus.jsonl") as f:
        for line in f:
            d = json.loads(line)
            corpus[d["id"]] = d["text"]
    titles_names = sorted(
        {m.group(0) for t in corpus.values() for m in re.finditer(r"\b[A-Z][a-z]{3,} [A-Z][a-z]{3,}\b", t[:300])}
    )
    out: list[Example] = []
    stats = {"queries": 0, "in_half": 0, "positives": 0, "negatives": 0, "swapped": 0, "weak_overlap": 0}
    for line in (folder / "queries_unlabeled.jsonl").read_text().splitlines():
        q = json.loads(line)
        stats["queries"] += 1
        if not q.get("answers") or (share_of(q["id"]) < 0.5) != (half == "train"):
            continue
        words = content_words(q["question"])
        best = None  # (overlap, doc, start, end)
        answer_free = []
        for doc in q.get("search_result_doc_ids", []):
            text = corpus.get(doc)
            if not text:
                continue
            found = False
            for ans in q["answers"]:
                if not ans.strip():
                    continue
                for m in re.finditer(r"(?<!\w)" + re.escape(ans) + r"(?!\w)", text):
                    found = True
                    lo, hi = sentence_window(text, m.start(), m.end())
                    overlap = len(words & content_words(text[lo:hi]))
                    if best is None or overlap > best[0]:
                        best = (overlap, doc, m.start(), m.end())
            if not found:
                answer_free.append(doc)
        if best is None:
            continue
        stats["in_half"] += 1
        overlap, doc, a, b = best
        if overlap < 2:  # the answer string is there, but not beside what the question asks about
            stats["weak_overlap"] += 1
            continue
        text = corpus[doc]
        lo, hi = sentence_window(text, a, b)
        context = text[lo:hi]
        out.append(Example(q["id"], q["question"], context, a - lo, text[a:b], q["answers"], q["id"]))
        stats["positives"] += 1
        # a window of an answer-free search document that shares the most with the question: a hard negative
        negatives = []
        for d in answer_free:
            t = corpus[d]
            for s in range(0, max(1, len(t) - 200), 500):
                lo2, hi2 = sentence_window(t, s, min(len(t), s + 1))
                negatives.append((len(words & content_words(t[lo2:hi2])), d, lo2, hi2))
        if negatives:
            _, d, lo2, hi2 = max(negatives)
            out.append(Example(q["id"] + "-free", q["question"], corpus[d][lo2:hi2], -1, "", q["answers"], q["id"]))
            stats["negatives"] += 1
        names = [m.group(0) for m in re.finditer(r"\b[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*\b", q["question"][1:])]
        names = [n for n in names if n.lower() not in STOP and n not in " ".join(q["answers"])]
        if names:
            name = rng.choice(names)
            for _ in range(20):
                other = rng.choice(titles_names)
                if other not in context and other.lower() not in q["question"].lower():
                    out.append(
                        Example(
                            q["id"] + "-swap",
                            q["question"].replace(name, other, 1),
                            context,
                            -1,
                            "",
                            q["answers"],
                            q["id"],
                        )
                    )
                    stats["swapped"] += 1
                    break
    return out, stats


def load_xquad(folder: Path) -> list[Example]:
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text().splitlines():
        d = json.loads(line)
        corpus[d["id"]] = d["text"]
    out = []
    for line in (folder / "questions.jsonl").read_text().splitlines():
        q = json.loads(line)
        ctx = corpus[q["doc_ids"][0]]
        start = q.get("answer_starts", [ctx.find(q["answers"][0])])[0]
        out.append(Example(q["id"], q["question"], ctx, start, q["answers"][0], q["answers"], q["doc_ids"][0]))
    return out


# ---- features ---------------------------------------------------------------------------------------------


def encode_windows(tokenizer, batch, max_length: int, stride: int, **options):
    """Each example's question beside its context, in windows of at most ``max_length`` tokens overlapping by
    ``stride``, with character offsets: one tokenisation for training and for evaluation."""
    return tokenizer(
        [e.question for e in batch],
        [e.context for e in batch],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        **options,
    )


def featurize(tokenizer, examples: list[Example], max_length: int, stride: int) -> list[dict]:
    """Token windows with start and end token targets; a window without the whole answer targets [CLS]."""
    feats = []
    for i in range(0, len(examples), 256):
        batch = examples[i : i + 256]
        enc = encode_windows(tokenizer, batch, max_length, stride, padding=False)
        for w, ids in enumerate(enc["input_ids"]):
            e = batch[enc["overflow_to_sample_mapping"][w]]
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            s_tok = e_tok = 0
            if e.answer_start >= 0:
                a, b = e.answer_start, e.answer_start + len(e.answer_text)
                ctx = [k for k, s in enumerate(seq) if s == 1]
                if ctx and offsets[ctx[0]][0] <= a and offsets[ctx[-1]][1] >= b:
                    s_tok = next(k for k in ctx if offsets[k][1] > a)
                    e_tok = next(k for k in reversed(ctx) if offsets[k][0] < b)
            feats.append({"input_ids": ids, "token_type_ids": enc["token_type_ids"][w], "start": s_tok, "end": e_tok})
    return feats


def batches(feats: list[dict], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths (little padding), in a shuffled order."""
    order = list(range(len(feats)))
    rng.shuffle(order)
    mega = batch_size * 50
    out = []
    for i in range(0, len(order), mega):
        group = sorted(order[i : i + mega], key=lambda k: len(feats[k]["input_ids"]))
        out.extend(group[j : j + batch_size] for j in range(0, len(group), batch_size))
    rng.shuffle(out)
    return out


def collate(feats: list[dict], idx: list[int], pad_id: int):
    import torch

    n = max(len(feats[k]["input_ids"]) for k in idx)
    ids = torch.full((len(idx), n), pad_id, dtype=torch.long)
    types = torch.zeros((len(idx), n), dtype=torch.long)
    mask = torch.zeros((len(idx), n), dtype=torch.long)
    for r, k in enumerate(idx):
        f = feats[k]
        m = len(f["input_ids"])
        ids[r, :m] = torch.tensor(f["input_ids"])
        types[r, :m] = torch.tensor(f["token_type_ids"])
        mask[r, :m] = 1
    starts = torch.tensor([feats[k]["start"] for k in idx])
    ends = torch.tensor([feats[k]["end"] for k in idx])
    return ids, types, mask, starts, ends


# ---- evaluation -------------------------------------------------------------------------------------------


def predict(
    model, tokenizer, examples: list[Example], max_length: int = 384, stride: int = 128, batch_size: int = 32
) -> list[tuple[str, float]]:
    """Each example's best span over its windows, and that span's score minus the no-answer score."""
    import torch

    best: dict[int, tuple[float, str, float]] = {}
    model.eval()
    for i in range(0, len(examples), batch_size):
        batch = examples[i : i + batch_size]
        enc = encode_windows(tokenizer, batch, max_length, stride, padding=True, return_tensors="pt")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(
                input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"], attention_mask=enc["attention_mask"]
            )
        starts, ends = out.start_logits.float().numpy(), out.end_logits.float().numpy()
        for w in range(len(enc["input_ids"])):
            k = i + int(enc["overflow_to_sample_mapping"][w])
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w].tolist()
            ctx = [j for j, s in enumerate(seq) if s == 1]
            null = float(starts[w, 0] + ends[w, 0])
            top = sorted(ctx, key=lambda j: -starts[w, j])[:20]
            for a in top:
                for b in range(a, min(a + MAX_ANSWER_TOKENS, ctx[-1] + 1)):
                    if seq[b] != 1:
                        continue
                    score = float(starts[w, a] + ends[w, b])
                    if k not in best or score > best[k][0]:
                        best[k] = (score, examples[k].context[offsets[a][0] : offsets[b][1]], score - null)
    model.train()
    return [(best[k][1], best[k][2]) if k in best else ("", -1e9) for k in range(len(examples))]


def squad_figures(model, tokenizer, examples: list[Example]) -> dict:
    from rag.evaluation.metrics import exact_match, token_f1

    preds = predict(model, tokenizer, examples)
    answerable = [(e, p) for e, p in zip(examples, preds) if e.answer_start >= 0]
    em = sum(exact_match(p, e.answers) for e, (p, _) in answerable) / max(1, len(answerable))
    f1 = sum(token_f1(p, e.answers) for e, (p, _) in answerable) / max(1, len(answerable))
    return {"questions": len(answerable), "em": round(100 * em, 2), "f1": round(100 * f1, 2)}


def dev_loss(model, feats: list[dict], pad_id: int, batch_size: int = 32) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, len(feats), batch_size):
            ids, types, mask, starts, ends = collate(feats, list(range(i, min(len(feats), i + batch_size))), pad_id)
            out = model(
                input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends
            )
            total += float(out.loss) * len(starts)
            n += len(starts)
    model.train()
    return total / max(1, n)


# ---- the model ----------------------------------------------------------------------------------------------


def load_model(base: Path, lora_rank: int, lora_alpha: int, seed: int, tiny: bool):
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    torch.manual_seed(seed)
    if tiny:  # the smoke test: a 2-layer, 64-wide BERT with the bundled tokenizer's vocabulary
        config = AutoConfig.from_pretrained(str(base), local_files_only=True)
        config.update({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128})
        model = AutoModelForQuestionAnswering.from_config(config)
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
    for p in model.bert.embeddings.parameters():
        p.requires_grad = False
    if lora_rank:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=0.05,
            target_modules=LORA_TARGETS,
            modules_to_save=["qa_outputs"],
            bias="none",
        )
        model = get_peft_model(model, config)
    return model


def shipped_tensors(model, lora_rank: int, lora_alpha: int) -> tuple[dict, dict]:
    """What ships: LoRA's A and B per layer and the QA head, or every trained weight; float16."""
    import torch

    tensors, meta = {}, {"kind": "lora" if lora_rank else "full"}
    if lora_rank:
        meta.update({"rank": str(lora_rank), "scale": repr(lora_alpha / lora_rank)})
        for name, t in model.state_dict().items():
            plain = name.replace("base_model.model.", "")
            if ".lora_A.default.weight" in plain:
                tensors[plain.replace(".lora_A.default.weight", ".weight") + ":A"] = t
            elif ".lora_B.default.weight" in plain:
                tensors[plain.replace(".lora_B.default.weight", ".weight") + ":B"] = t
            elif plain.startswith("qa_outputs.modules_to_save.default."):
                tensors[plain.replace("modules_to_save.default.", "")] = t
    else:
        for name, p in model.named_parameters():
            if p.requires_grad:
                tensors[name] = p.detach()
    return {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}, meta


# ---- training -------------------------------------------------------------------------------------------------


def train(args) -> dict:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from rag.encoders.embedder import BUNDLED_SHA256, bundled_model_path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    base = bundled_model_path()
    found = sha256(base / "model.safetensors")
    if found != BUNDLED_SHA256:
        raise SystemExit(f"the bundled model's weights have sha256 {found}, not {BUNDLED_SHA256}")
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    started = time.time()

    examples = load_shifts(SHIFTS, args.negative_rate, rng)
    dev = [e for e in examples if share_of(e.group) < args.dev_share]
    train_ex = [e for e in examples if share_of(e.group) >= args.dev_share]
    rng.shuffle(train_ex)
    if args.max_examples:
        train_ex = train_ex[: args.max_examples]
    dev = sorted(dev, key=lambda e: e.qid)[: args.dev_examples]
    news_stats = {}
    news: list[Example] = []
    if args.news_epochs and NEWS.exists():
        news, news_stats = load_news(NEWS, random.Random(args.seed + 1), "train")
    log(
        f"stage 1: {len(train_ex)} examples ({sum(e.answer_start < 0 for e in train_ex)} without an answer), "
        f"dev {len(dev)}; stage 2: {len(news)} news examples {news_stats}"
    )

    feats1 = featurize(tokenizer, train_ex, args.max_length, args.stride)
    dev_feats = featurize(tokenizer, dev, args.max_length, args.stride)
    replay = rng.sample(train_ex, min(len(train_ex), args.replay)) if news else []
    feats2 = featurize(tokenizer, news + replay, args.max_length, args.stride) if news else []
    plan = []  # (stage, batch of feature indices, learning-rate factor)
    for epoch in range(args.epochs):
        plan += [("shifts", b) for b in batches(feats1, args.batch_size, random.Random(args.seed + 10 + epoch))]
    for epoch in range(args.news_epochs if feats2 else 0):
        plan += [("news", b) for b in batches(feats2, args.batch_size, random.Random(args.seed + 20 + epoch))]
    stage1_steps = sum(1 for s, _ in plan if s == "shifts")
    log(f"{len(feats1)} stage-1 windows, {len(feats2)} stage-2 windows, {len(plan)} steps")

    model = load_model(base, args.lora_rank, args.lora_alpha, args.seed, args.tiny)
    trainable = [p for p in model.parameters() if p.requires_grad]
    log(f"trainable parameters: {sum(p.numel() for p in trainable):,}")
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(args.warmup * stage1_steps))

    def lr_at(step: int) -> float:
        if step < stage1_steps:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (stage1_steps - step) / max(1, stage1_steps - warmup))
        # stage 2: a short linear decay from the news learning rate
        k, n = step - stage1_steps, len(plan) - stage1_steps
        return args.news_lr / args.lr * max(0.0, (n - k) / max(1, n))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    if args.init:
        if args.lora_rank:
            raise SystemExit("--init continues a full fine-tune: use it with --lora-rank 0")
        missing = model.load_state_dict(torch.load(args.init, weights_only=False)["model"], strict=False)
        if missing.unexpected_keys or any("embeddings" not in k for k in missing.missing_keys):
            raise SystemExit(f"{args.init} does not match the model: {missing}")
        log(f"started from {args.init}")
    ckpt = out / "checkpoint.pt"
    step, history, best_dev = 0, [], math.inf
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, best_dev = state["step"], state["history"], state["best_dev"]
        log(f"resumed at step {step}")
    pad_id = tokenizer.pad_token_id
    model.train()
    window_start, seen, losses = time.time(), 0, []
    feats_of = {"shifts": feats1, "news": feats2}
    while step < len(plan):
        stage, idx = plan[step]
        ids, types, mask, starts, ends = collate(feats_of[stage], idx, pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.float32):
            loss = model(
                input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        seen += len(idx)
        step += 1
        if step % args.log_every == 0 or step == len(plan):
            rate = seen / (time.time() - window_start)
            log(
                f"step {step}/{len(plan)} {stage} loss {sum(losses) / len(losses):.4f} "
                f"lr {scheduler.get_last_lr()[0]:.2e} {rate:.1f} windows/s"
            )
            history.append({"step": step, "loss": round(sum(losses) / len(losses), 4)})
            window_start, seen, losses = time.time(), 0, []
        if step % args.eval_every == 0 or step == len(plan):
            d = dev_loss(model, dev_feats, pad_id)
            history.append({"step": step, "dev_loss": round(d, 4)})
            log(f"dev loss {d:.4f}")
            best_dev = min(best_dev, d)
            tmp = ckpt.with_suffix(".tmp")
            torch.save(
                {
                    "model": {
                        k: v
                        for k, v in model.state_dict().items()
                        if "lora_" in k or "qa_outputs" in k or not args.lora_rank
                    },
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "history": history,
                    "best_dev": best_dev,
                },
                tmp,
            )
            os.replace(tmp, ckpt)

    figures = {
        "dev_loss": round(dev_loss(model, dev_feats, pad_id), 4),
        "shifts_dev": squad_figures(model, tokenizer, [e for e in dev if e.answer_start >= 0]),
    }
    if XQUAD.exists() and not args.no_xquad:
        figures["xquad_gold_paragraph"] = squad_figures(model, tokenizer, load_xquad(XQUAD))
    log(f"figures {figures}")
    tensors, meta = shipped_tensors(model, args.lora_rank, args.lora_alpha)
    meta.update({"base_sha256": BUNDLED_SHA256, "format": "1"})
    save_file(tensors, str(out / "reader.safetensors"), metadata=meta)
    record = {
        "command": "python " + " ".join(sys.argv),
        "seed": args.seed,
        "arguments": vars(args),
        "base_model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "sha256": BUNDLED_SHA256},
        "data": {
            **{f"squadshifts-train/{n}": sha256(SHIFTS / n) for n in SHIFTS_FILES},
            **(
                {
                    "realtimeqa-news-scale/queries_unlabeled.jsonl": sha256(NEWS / "queries_unlabeled.jsonl"),
                    "realtimeqa-news-scale/corpus.jsonl": sha256(NEWS / "corpus.jsonl"),
                }
                if news
                else {}
            ),
        },
        "examples": {
            "stage1": len(train_ex),
            "stage1_windows": len(feats1),
            "dev": len(dev),
            "stage2": len(news),
            "stage2_replay": len(replay),
            "news_labels": news_stats,
        },
        "steps": len(plan),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "wall_seconds": round(time.time() - started),
        "torch": torch.__version__,
        "figures": figures,
        "history": history,
        "weights": {
            "file": "reader.safetensors",
            "sha256": sha256(out / "reader.safetensors"),
            "bytes": (out / "reader.safetensors").stat().st_size,
        },
    }
    (out / "record.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {out / 'reader.safetensors'} ({record['weights']['bytes']:,} bytes) in {record['wall_seconds']} s")
    return record


def compress(args) -> dict:
    """Turn a full fine-tune's weights into adapters: each changed matrix's difference from the base model, cut by
    SVD to its best rank-r approximation (B @ A), for each r of ``args.compress_rank``; vectors (biases, layer
    norms) and the QA head stay whole. Each adapter's XQuAD figures are measured beside the full weights', so
    what a rank costs is known."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.answer.readers.span import merged_model
    from rag.encoders.embedder import BUNDLED_SHA256, bundled_model_path

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    base = bundled_model_path()
    full_path = out / "reader.safetensors"
    with safe_open(str(full_path), framework="pt") as f:
        if (f.metadata() or {}).get("kind") != "full":
            raise SystemExit(f"{full_path} is not a full fine-tune")
        full = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118
    base_state = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True).state_dict()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    xquad = load_xquad(XQUAD)
    model, _ = merged_model(base, full_path)
    results = {
        "full": {
            "file": full_path.name,
            "bytes": full_path.stat().st_size,
            "xquad_gold_paragraph": squad_figures(model, tokenizer, xquad),
        }
    }
    log(f"full: {results['full']}")
    for rank in args.compress_rank:
        tensors, kept = {}, []
        for name, w in full.items():
            if w.dim() == 2 and name in base_state and min(w.shape) > rank:
                u, s, vt = torch.linalg.svd(w - base_state[name], full_matrices=False)
                root = s[:rank].sqrt()
                tensors[name + ":A"] = (root[:, None] * vt[:rank]).contiguous()
                tensors[name + ":B"] = (u[:, :rank] * root[None, :]).contiguous()
                kept.append(float((s[:rank] ** 2).sum() / (s**2).sum()))
            else:
                tensors[name] = w
        path = out / f"reader-r{rank}.safetensors"
        save_file(
            {k: v.to(torch.float16).contiguous() for k, v in tensors.items()},
            str(path),
            metadata={
                "kind": "lora",
                "rank": str(rank),
                "scale": "1.0",
                "base_sha256": BUNDLED_SHA256,
                "format": "1",
                "from": f"a full fine-tune, its weight changes cut to rank {rank} by SVD",
            },
        )
        model, _ = merged_model(base, path)
        results[f"rank {rank}"] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha256(path),
            "energy_kept": round(sum(kept) / max(1, len(kept)), 4),
            "xquad_gold_paragraph": squad_figures(model, tokenizer, xquad),
        }
        log(f"rank {rank}: {results[f'rank {rank}']}")
    record_path = out / "record.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record["compressed"] = {"command": "python " + " ".join(sys.argv), **results}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return results


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the weights, the record and checkpoints")
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--lora-rank", type=int, default=16, help="0: fine-tune every weight but the embeddings")
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--news-lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--news-epochs", type=int, default=1, help="0 skips the news stage")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--stride", type=int, default=96)
    p.add_argument("--warmup", type=float, default=0.06, help="share of stage 1's steps")
    p.add_argument(
        "--negative-rate", type=float, default=0.3, help="questions also asked of a paragraph without their answer"
    )
    p.add_argument("--dev-share", type=float, default=0.03)
    p.add_argument("--dev-examples", type=int, default=600)
    p.add_argument("--replay", type=int, default=1500, help="stage-1 examples replayed in stage 2")
    p.add_argument("--max-examples", type=int, default=0, help="0: all")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--init",
        help="start from this earlier full fine-tune's checkpoint.pt (another epoch at a new schedule)",
    )
    p.add_argument("--float32", action="store_true", help="no bfloat16 autocast")
    p.add_argument("--tiny", action="store_true", help="a tiny random model (the smoke test)")
    p.add_argument("--no-xquad", action="store_true")
    p.add_argument(
        "--compress-rank",
        type=int,
        nargs="*",
        default=[],
        help="do not train: cut the full fine-tune in --out to adapters of these ranks, and measure them",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    compress(arguments) if arguments.compress_rank else train(arguments)
