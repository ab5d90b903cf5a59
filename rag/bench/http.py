"""The web app under load: `rag serve` in its own process, asked over loopback by concurrent clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from rag.bench.query import percentiles


class Server:
    """`rag serve` on a free loopback port, started for a measurement and stopped after it."""

    def __init__(self, index_dir: Path, env: dict | None = None, workers: int = 1) -> None:
        self.port = _free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), "RAG_RATE_LIMIT": "0", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def __enter__(self) -> Server:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_mb(self) -> dict:
        """Resident memory now and at its peak, from /proc, summed over the server and its worker processes.

        A page that several processes share (a memory-mapped snapshot, a library) counts in each one's RSS;
        PSS divides it among them, so with several workers PSS is what the machine spends and RSS overstates it."""
        fields = {"VmRSS": 0.0, "VmHWM": 0.0, "RssAnon": 0.0}
        pss = 0.0
        for pid in _process_tree(self.proc.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in fields:
                        fields[key] += int(value.split()[0]) / 1024
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
            except OSError:
                continue
        return {
            "rss_mb": round(fields["VmRSS"], 1),
            "peak_rss_mb": round(fields["VmHWM"], 1),
            "pss_mb": round(pss, 1),
            "anon_mb": round(fields["RssAnon"], 1),
            "processes": len(_process_tree(self.proc.pid)),
        }

    def first_answer(self, question: str, timeout: float = 300) -> dict:
        """Seconds from start until /healthz first answers, and until the first answer."""
        import httpx

        health = None
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() - self.started < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError("rag serve exited during start-up")
                try:
                    if health is None and client.get(f"{self.url}/healthz").status_code in (200, 503):
                        health = time.perf_counter() - self.started
                    if (
                        health is not None
                        and client.post(f"{self.url}/api/ask", json={"question": question}).status_code == 200
                    ):
                        return {
                            "healthz_s": round(health, 2),
                            "first_answer_s": round(time.perf_counter() - self.started, 2),
                        }
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"rag serve gave no answer within {timeout:g} s")


def hammer(url: str, requests: list[tuple[str, str, dict | None]], clients: int) -> dict:
    """Send ``requests`` (method, path, json) from ``clients`` concurrent keep-alive connections; latency and
    status of each.

    The clients are coroutines on one thread speaking HTTP/1.1 over asyncio streams: the load generator shares
    the machine's two cores with the server, so it must cost little. Eight httpx clients in threads took
    2.5 ms of CPU per request (5.8 ms at 32, their threads contending for the GIL), 8-17% of what the server
    had left."""
    return asyncio.run(_hammer(url, requests, clients))


async def _hammer(url: str, requests: list[tuple[str, str, dict | None]], clients: int) -> dict:
    u = urlparse(url)
    host, port = u.hostname, u.port or 80
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    queue = list(requests)

    async def client() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while queue:
            method, path, body = queue.pop()
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                status, keep = await asyncio.wait_for(_exchange(*conn, f"{host}:{port}", method, path, body), 120)
                if not keep:
                    conn = _close(conn)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                status = 0
                errors.append(type(e).__name__)
                conn = _close(conn)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        _close(conn)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return _summary(clients, len(requests), seconds, latencies, statuses, errors)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, method: str, path: str, body: dict | None
) -> tuple[int, bool]:
    """One request and its whole response: (status, whether the connection stays open)."""
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    writer.write(head.encode("ascii") + b"\r\n" + data)
    await writer.drain()
    status_line = (await reader.readuntil(b"\r\n")).decode("latin-1").split()
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {status_line}")
    headers = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()  # the body runs to the end of the connection
        return int(status_line[1]), False
    return int(status_line[1]), headers.get("connection") != "close"


def _close(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if conn is not None:
        conn[1].close()


def _summary(
    clients: int, requests: int, seconds: float, latencies: list[float], statuses: dict[int, int], errors: list[str]
) -> dict:
    return {
        "clients": clients,
        "requests": requests,
        "seconds": round(seconds, 2),
        "requests_per_s": round(requests / seconds, 2),
        **percentiles(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500 or k == 0),
        "client_errors": errors[:5],
        "latencies_ms": latencies,
    }


def _merged(rounds: list[dict]) -> dict:
    """One level's rounds as one: requests over the seconds they took, percentiles over every latency."""
    statuses: dict[int, int] = {}
    for r in rounds:
        for k, v in r["statuses"].items():
            statuses[int(k)] = statuses.get(int(k), 0) + v
    return _summary(
        rounds[0]["clients"],
        sum(r["requests"] for r in rounds),
        sum(r["seconds"] for r in rounds),
        [x for r in rounds for x in r["latencies_ms"]],
        statuses,
        [e for r in rounds for e in r["client_errors"]],
    )


def _process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's worker processes), from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def concurrency(
    index_dir: Path,
    questions: list[str],
    levels=(1, 8, 32),
    per_level: int = 480,
    rounds: int = 3,
    workers: int = 1,
    env: dict | None = None,
) -> dict:
    """Requests/s and latency at each count of clients. The levels take turns, ``rounds`` times, so that a
    noisy machine's slow minutes fall on every level alike (here, the same level measured twice in a row
    differed by up to 15%)."""
    out: dict = {"workers": workers, "rounds": rounds, "env": env or {}}
    with Server(index_dir, env=env, workers=workers) as server:
        out["cold_start"] = server.first_answer(questions[0])
        out["rss_after_start"] = server.rss_mb()
        runs: dict[int, list[dict]] = {c: [] for c in levels}
        asked = 0
        for _ in range(rounds):
            for clients in levels:
                asks = [
                    ("POST", "/api/ask", {"question": questions[(asked + i) % len(questions)]})
                    for i in range(per_level // rounds)
                ]
                asked += len(asks)
                runs[clients].append(hammer(server.url, asks, clients))
        for clients in levels:
            out[f"clients_{clients}"] = _merged(runs[clients])
        out["rss_after_load"] = server.rss_mb()
    for section in out.values():
        if isinstance(section, dict):
            section.pop("latencies_ms", None)
    one = out["clients_1"]["requests_per_s"]
    for clients in levels[1:]:
        out[f"clients_{clients}"]["throughput_vs_one_client"] = round(
            out[f"clients_{clients}"]["requests_per_s"] / one, 2
        )
    return out


def mixed_load(
    index_dir: Path,
    questions: list[str],
    article_ids: list[str],
    total: int = 2000,
    clients: int = 16,
    warm: int = 200,
    workers: int = 1,
    env: dict | None = None,
) -> dict:
    """Every kind of request, good and bad, from many clients: no 5xx, and memory flat after warm-up."""
    rng = random.Random(7)

    def one() -> tuple[str, str, dict | None]:
        kind = rng.random()
        q = rng.choice(questions)
        if kind < 0.45:
            return "POST", "/api/ask", {"question": q}
        if kind < 0.6:
            return "POST", "/api/ask/stream", {"question": q}
        if kind < 0.7:
            return "GET", f"/articles/{rng.choice(article_ids)}?hl=0-20", None
        if kind < 0.75:
            return "GET", "/healthz", None
        if kind < 0.8:
            return "GET", f"/api/articles/{rng.choice(article_ids)}", None
        bad = [
            {"question": ""},
            {"question": q, "k": 1e300},
            {"question": q, "k": "x"},
            {"question": q * 100},
            {"question": q, "since": "2022-13-40"},
            {"history": "nope", "question": q},
        ]
        return (
            ("POST", "/api/ask", rng.choice(bad)) if kind < 0.95 else ("GET", "/articles/nope?hl=1-" + "9" * 50, None)
        )

    with Server(index_dir, env=env, workers=workers) as server:
        server.first_answer(questions[0])
        warmup = hammer(server.url, [one() for _ in range(warm)], clients)
        before = server.rss_mb()
        load = hammer(server.url, [one() for _ in range(total)], clients)
        after = server.rss_mb()
    for section in (warmup, load):
        section.pop("latencies_ms")

    def growth(key: str) -> float | None:
        return round((after[key] - before[key]) / before[key], 4) if before.get(key) else None

    # RSS also counts the pages of the memory-mapped snapshot that questions have read so far (bounded by the
    # files' size, and the kernel's to reclaim); the anonymous part is the process's own heap, where a leak
    # would show.
    return {
        "warm_up": warmup,
        "load": load,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_growth": growth("rss_mb"),
        "anon_growth": growth("anon_mb"),
    }


def uploads(
    index_dir: Path,
    questions: list[str],
    records: list[dict],
    workers: int = 1,
    env: dict | None = None,
    pause: float = 0.5,
) -> dict:
    """Each record uploaded through the API and deleted again, while one client asks without pause: how long each
    write takes, how long a question waits meanwhile, and the server's memory at its peak. The peak is each
    process's high-water mark, kept by the kernel, so no sample can miss it; the index is left as it was found."""
    token = secrets.token_hex(16)
    out: dict = {"records": len(records), "uploads_s": [], "deletes_s": []}
    with Server(index_dir, env={**(env or {}), "RAG_API_TOKEN": token}, workers=workers) as server:
        server.first_answer(questions[0])
        out["rss_before_mb"] = server.rss_mb()
        stop = threading.Event()
        waits: list[float] = []
        failed: dict[str, int] = {}

        def ask() -> None:
            import httpx

            with httpx.Client(base_url=server.url, timeout=60) as client:
                for i in itertools.count():
                    if stop.is_set():
                        return
                    started = time.perf_counter()
                    try:
                        question = {"question": questions[i % len(questions)]}
                        status = str(client.post("/api/ask", json=question).status_code)
                    except httpx.HTTPError as e:
                        status = type(e).__name__
                    waits.append(time.perf_counter() - started)
                    if status != "200":
                        failed[status] = failed.get(status, 0) + 1

        asker = threading.Thread(target=ask, name="bench-asker", daemon=True)
        asker.start()
        try:
            _upload_and_delete(server.url, token, records, out, pause)
        finally:
            stop.set()
            asker.join(120)
        out["rss_after_mb"] = server.rss_mb()
    out.update(
        questions=len(waits),
        question_errors=failed,
        **{f"question_{k}": v for k, v in percentiles([w * 1000 for w in waits]).items()},
        longest_question_s=round(max(waits), 3) if waits else None,
    )
    return out


def _upload_and_delete(url: str, token: str, records: list[dict], out: dict, pause: float) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as client:
        for k, record in enumerate(records):
            article_id = f"bench-upload-{k}"
            for method, path, body, want, times in (
                ("POST", "/api/articles", {**record, "id": article_id}, 201, out["uploads_s"]),
                ("DELETE", f"/api/articles/{article_id}", None, 200, out["deletes_s"]),
            ):
                started = time.perf_counter()
                response = client.request(method, path, json=body)
                if response.status_code != want:
                    raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
                times.append(round(time.perf_counter() - started, 2))
                time.sleep(pause)  # questions run between writes too, as on a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
