"""Serving load: `kedro serve`'s server under concurrent clients against the same model in process.

    python benchmarks/serve_load.py [--clients 8] [--requests 250] [--batch 64] [--batches 10]
        [--out FILE.json]

Packages the recipe's network (``conf/base``; untrained weights cost the same as trained
ones) as the served model, exactly as the training pipeline does (``export_onnx``,
``package_served_model``, the ``predict`` and ``serve`` parameters of conf/base), saves it
in MLflow's format and starts the server that ``kedro serve`` runs (``server.answer``:
MLflow's scoring server behind the body limit) in a subprocess on 127.0.0.1. Then, with
32x32 PNG pictures (seeded; a CIFAR-sized file, about 3 KB):

* served: ``--clients`` threads, each with its own connection, send ``--requests``
  single-picture requests one after the other; then ``--batches`` requests of ``--batch``
  pictures each;
* bare: the same requests' tables through the served model's ``predict`` in this process
  (decoding, the 32x32 policy and ONNX Runtime: everything but HTTP and JSON), one at a time.

First, ``ABORTED`` clients state a body and hang up half-way; the next request's answer
time and the server's log lines per hang-up are printed. Then requests/s, pictures/s,
p50/p95/p99 latency, errors, the server's resident memory (RSS) before the load, after the
first 100 requests and after all, and the ratio served / bare in pictures/s. Last, why
ONNX Runtime serves: one picture's latency through Keras' ``predict``, a direct call of
the Keras network, and ONNX Runtime.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mlflow
import numpy as np
import pandas as pd
from PIL import Image

from alexnet_cifar10.inference import OnnxNetwork
from alexnet_cifar10.pipelines.export.nodes import export_onnx, package_served_model
from alexnet_cifar10.pipelines.training.nodes import build_model
from alexnet_cifar10.provenance import TrainedModel
from alexnet_cifar10.serving import example_request
from bench_common import load_parameters

# Requests after which the server's memory must stay steady.
WARM_REQUESTS = 100
# The server as `kedro serve` runs it, its log lines at INFO on the console as Kedro's are.
SERVER = (
    "import logging, sys, mlflow; from alexnet_cifar10.server import answer; "
    "logging.basicConfig(level=logging.INFO); "
    "answer(mlflow.pyfunc.load_model(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), 'benchmark')"
)
# Clients that state a body and hang up before its end, sent before the load.
ABORTED = 30


def pictures(count: int, seed: int) -> list[str]:
    """``count`` smooth 32x32 RGB pictures as base64 PNG files."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((32, 32), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        made.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return made


def served_model(params: dict) -> tuple[object, TrainedModel]:
    """The served model of the recipe's network, and that network with a card."""
    network = build_model(
        params["training"]["model"],
        params["training"]["augmentation"],
        params["training"]["precision"],
        params["seed"],
        params["class_names"],
    )
    card = {
        "model_version": "benchmark",
        "run_label": "untrained recipe network",
        "kedro_env": "base",
        "class_names": params["class_names"],
    }
    model = TrainedModel(network, card, pd.DataFrame())
    return package_served_model(export_onnx(model), params["predict"], params["serve"]), model


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body(rows: list[str]) -> bytes:
    split = {"columns": ["image"], "data": [[row] for row in rows]}
    return json.dumps({"dataframe_split": split}).encode()


def load(port: int, requests: list[list[bytes]], on_done: Callable[[int], None]) -> dict:
    """Each client (a list of request bodies) on its own thread and connection."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(bodies: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for payload in bodies:
            started = time.perf_counter()
            try:
                connection.request(
                    "POST", "/invocations", payload, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                text = response.read()
                ok = response.status == HTTPStatus.OK and b'"refused' not in text
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                latencies.append(time.perf_counter() - started)
                errors[0] += not ok
                on_done(len(latencies))
        connection.close()

    threads = [threading.Thread(target=client, args=(bodies,)) for bodies in requests]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors[0],
    }


def hang_ups(port: int, count: int, good: bytes, lines: list[str]) -> dict:
    """``count`` clients that state a body of 1,000 bytes, send 10 and close; then the
    seconds until a good request is answered, and the server's log lines meanwhile."""
    before = len(lines)
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                b"application/json\r\nContent-Length: 1000\r\n\r\n0123456789"
            )
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/invocations", good, {"Content-Type": "application/json"})
    status = connection.getresponse().status
    seconds = time.perf_counter() - started
    time.sleep(1)  # the server's last lines reach the reader
    return {"status": status, "seconds": seconds, "log_lines": len(lines) - before}


def bare(served: object, tables: list[pd.DataFrame]) -> dict:
    started = time.perf_counter()
    for table in tables:
        served.predict(None, table)
    seconds = time.perf_counter() - started
    return {"requests": len(tables), "seconds": seconds, "requests_per_s": len(tables) / seconds}


def single_picture_ms(network: object, onnx_network: OnnxNetwork, rounds: int) -> dict:
    image = np.zeros((1, 32, 32, 3), np.uint8)
    ways = {
        "Keras Model.predict": lambda: network.predict(image, verbose=0),
        "Keras direct call": lambda: np.asarray(network(image, training=False)),
        "ONNX Runtime": lambda: onnx_network.predict(image, batch_size=1),
    }
    result = {}
    for name, call in ways.items():
        call()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        result[name] = float(np.median(times) * 1000)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit("the server stopped before it answered /ping")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == HTTPStatus.OK:
                return time.monotonic() - started
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server never answered /ping")


def report(  # noqa: PLR0913
    args: argparse.Namespace,
    startup: float,
    aborted: dict,
    rows: list,
    memory: dict,
    ratios: tuple[float, float],
    latency: dict,
) -> None:
    """Print the figures; write them as JSON to ``args.out`` if given."""
    print(f"\n{platform.machine()}, {os.cpu_count()} cores; server ready in {startup:.1f} s "
          "(model loaded, /ping answered)")  # fmt: skip
    print(f"{'load':<34}{'req/s':>8}{'pict/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}")  # fmt: skip
    for name, result, size in rows:
        line = f"{name:<34}{result['requests_per_s']:>8.1f}{result['requests_per_s'] * size:>9.0f}"
        if "p50_ms" in result:
            line += "".join(f"{result[key]:>9.1f}" for key in ("p50_ms", "p95_ms", "p99_ms"))
            line += f"{result['errors']:>8}"
        print(line)
    print(f"{ABORTED} clients hung up half-way through their bodies: the next request answered "
          f"{aborted['status']} in {aborted['seconds'] * 1000:.0f} ms; "
          f"{aborted['log_lines'] / ABORTED:.1f} server log lines per hang-up")  # fmt: skip
    print("server RSS MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items()))
    print(f"served / bare, pictures/s: single {ratios[0]:.2f}, "
          f"batches of {args.batch} {ratios[1]:.2f}")  # fmt: skip
    print("one picture, median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in latency.items()))
    if args.out:
        figures = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "command": " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]]),
            "ready_seconds": startup,
            "hang_ups": {"clients": ABORTED, **aborted},
            "load": {name: result for name, result, _ in rows},
            "server_rss_mib": memory,
            "served_over_bare": {"single": ratios[0], f"batches of {args.batch}": ratios[1]},
            "one_picture_ms": latency,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=250, help="single requests per client")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10, help="batch requests per client")
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()

    params = load_parameters("base")
    served, model = served_model(params)
    singles = pictures(args.clients * args.requests, seed=0)
    batch_rows = pictures(args.batch, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "served_model"
        mlflow.pyfunc.save_model(path, python_model=served, input_example=example_request())
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(path), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
        try:
            startup = wait_ready(port, process)
            memory = {"before": rss_mib(process.pid)}
            aborted = hang_ups(port, ABORTED, body(singles[:1]), lines)

            def note(done: int) -> None:
                if done == WARM_REQUESTS:
                    memory[f"after {WARM_REQUESTS}"] = rss_mib(process.pid)

            clients = [
                [body([singles[c * args.requests + r]]) for r in range(args.requests)]
                for c in range(args.clients)
            ]
            single = load(port, clients, note)
            memory["after singles"] = rss_mib(process.pid)
            batched = load(port, [[body(batch_rows)] * args.batches] * args.clients, lambda _: 0)
            memory["after batches"] = rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)

    served.load_context(None)
    bare_single = bare(served, [pd.DataFrame({"image": [row]}) for row in singles])
    bare_batch = bare(served, [pd.DataFrame({"image": batch_rows})] * (args.batches * 2))
    latency = single_picture_ms(model.network, OnnxNetwork(served.onnx_model), rounds=200)

    ratios = (
        single["requests_per_s"] / bare_single["requests_per_s"],
        batched["requests_per_s"] / bare_batch["requests_per_s"],
    )
    rows = [
        (f"served: {args.clients} clients x {args.requests} x 1", single, 1),
        (f"served: {args.clients} clients x {args.batches} x {args.batch}", batched, args.batch),
        ("bare: 1 picture a call", bare_single, 1),
        (f"bare: {args.batch} pictures a call", bare_batch, args.batch),
    ]
    report(args, startup, aborted, rows, memory, ratios, latency)


if __name__ == "__main__":
    main()
