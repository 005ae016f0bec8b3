"""kedro viz in headless Chromium, used as a person uses it: the live server and the static build.

Both tests use a project copy after one ``kedro run --env test`` (conftest's
``finished_project``), so datasets have data and the plots have previews, and drive Chromium
offline (see ``browser``): every request that leaves 127.0.0.1 or the disk is refused and
recorded. Screenshots go to the test's tmp folder; with ``UPDATE_SCREENSHOTS=1`` they are
also copied to docs/images/.

kedro-viz asks PyPI for a newer release when it starts (``requests``, 30 s timeout). The
server gets ``HTTP(S)_PROXY`` pointing at a closed local port with ``NO_PROXY`` for
loopback, so that check fails at once instead of touching the network.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import (
    VIEWPORT,
    Session,
    assert_loopback_only,
    check_screenshots,
    free_port,
    http_get,
    offline_env,
    stop_server,
    wait_until_served,
    wait_until_still,
)
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro_cli import ENV, kedro

from alexnet_cifar10.pipelines import promote
from alexnet_cifar10.pipelines.export.pipeline import serving_pipeline
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS

pytestmark = pytest.mark.slow

PIPELINES = ("data_processing", "training", "evaluate", "predict", "features")
# What `kedro run` runs (and then the served model), and kedro viz shows first; predict and
# features run on demand.
DEFAULT = ("data_processing", "training", "evaluate")
LAYERS = ["raw", "intermediate", "model_input", "models", "model_output", "reporting"]
PLOT = "confusion_matrix_plot"
# The page asks for the Inter font from Google Fonts and falls back to local fonts offline.
ALLOWED_OFFLINE_FAILURES = ("https://fonts.googleapis.com/", "https://fonts.gstatic.com/")
# A returning visitor: the first-visit feature tour was closed once (kedro-viz keeps its
# settings in localStorage). Clicking the tour away instead can scroll the page sideways.
NO_TOUR = "window.localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}))"


# --- helpers -------------------------------------------------------------------------------


def expected_graph() -> dict[str, dict[str, set[str]]]:
    """Task, dataset and parameter names of every pipeline, from the project's own code."""
    graph = {}
    pipes = {
        name: importlib.import_module(f"alexnet_cifar10.pipelines.{name}").create_pipeline()
        for name in PIPELINES
    }
    # `kedro run` ends with the export pipeline's ONNX file and served model, and promote.
    pipes["serving"] = serving_pipeline()
    pipes["promote"] = promote.create_pipeline()
    for name, pipe in pipes.items():
        datasets = pipe.datasets()
        graph[name] = {
            "task": {node.name for node in pipe.nodes},
            "data": {d for d in datasets if not d.startswith("params:") and d != "parameters"},
            "parameters": {d for d in datasets if d.startswith("params:")},
            "uses": {(p, n.name) for n in pipe.nodes for p in n.inputs if p.startswith("params:")},
        }
    for name, members in (
        ("__default__", (*DEFAULT, "serving", "promote")),
        ("__all__", PIPELINES),
    ):
        graph[name] = {
            key: set().union(*(graph[member][key] for member in members))
            for key in graph[PIPELINES[0]]
        }
    del graph["serving"], graph["promote"]
    return graph


def catalog_layers(project: Path) -> dict[str, str]:
    """Dataset name -> kedro-viz layer, as conf/base/catalog.yml declares them (its named
    entries and the datasets its patterns make)."""
    config = OmegaConfigLoader(str(project / "conf"), **CONFIG_LOADER_ARGS)["catalog"]
    catalog = DataCatalog.from_config(config)
    names = set().union(*(graph["data"] for graph in expected_graph().values()))
    metadata = {name: (catalog.get(name).metadata or {}) for name in names if name in catalog}
    return {
        name: meta["kedro-viz"]["layer"] for name, meta in metadata.items() if "kedro-viz" in meta
    }


def _nodes_and_edges(api: dict[str, Any]) -> tuple[dict[str, dict[str, dict]], set]:
    """Nodes by type then name, and edges as (source name, target name)."""
    by_id = {node["id"]: node for node in api["nodes"]}
    by_type: dict[str, dict[str, dict]] = {}
    for node in api["nodes"]:
        by_type.setdefault(node["type"], {})[node["name"]] = node
    return by_type, {(by_id[e["source"]]["name"], by_id[e["target"]]["name"]) for e in api["edges"]}


def check_api(fetch: Callable[[str], dict[str, Any]], project: Path) -> None:
    """The data behind the page (``fetch("main")``: the default pipeline;
    ``fetch("pipelines/<name>")``: another): every pipeline's nodes, layers, parameters
    wired to their nodes."""
    graph = expected_graph()
    main = fetch("main")
    assert {p["id"] for p in main["pipelines"]} >= {*PIPELINES, "__default__"}
    assert main["layers"] == LAYERS
    layers = catalog_layers(project)
    edges: set[tuple[str, str]] = set()
    for name in ("__default__", *PIPELINES):
        by_type, shown_edges = _nodes_and_edges(
            main if name == "__default__" else fetch(f"pipelines/{name}")
        )
        for kind in ("task", "data", "parameters"):
            assert set(by_type.get(kind, {})) == graph[name][kind], (name, kind)
            # Each node says which pipelines hold it.
            assert all(name in node["pipelines"] for node in by_type.get(kind, {}).values())
        for dataset, node in by_type["data"].items():
            assert node["layer"] == layers.get(dataset), f"{dataset} is in layer {node['layer']}"
        assert graph[name]["uses"] <= shown_edges, f"{name}: parameters not attached to nodes"
        edges |= shown_edges
    # Every step of the recipe is a node: build_model makes the untrained network that
    # train_model fits on the model inputs; the network's summary is an artifact.
    assert {
        ("build_model", "untrained_model"),
        ("untrained_model", "train_model"),
        ("model_input_train", "train_model"),
        ("untrained_model", "summarise_model"),
        ("summarise_model", "model_summary"),
    } <= edges
    assert layers["model_summary"] == "reporting"
    # predict: the user's folder to the model's input to predictions; features: the
    # model and the model inputs to embeddings, then the probe and the projection.
    assert {
        ("user_images", "prepare_images"),
        ("prepare_images", "user_model_input"),
        ("model", "predict_images"),
        ("predict_images", "user_predictions"),
        ("model", "extract_embeddings"),
        ("model_input_test", "extract_embeddings"),
        ("embeddings", "fit_linear_probe"),
        ("embeddings", "plot_embedding_projection"),
    } <= edges


# --- browser -------------------------------------------------------------------------------


def task_names(page: Any) -> set[str]:
    return set(page.locator(".pipeline-node--task .pipeline-node__text").all_text_contents())


def wait_for_tasks(page: Any, expected: set[str], timeout_ms: float = 15_000) -> None:
    """Wait until the graph shows exactly the ``expected`` task nodes."""
    # A timeout is not an error here: the assertion below says what the graph shows.
    with contextlib.suppress(Exception):
        page.wait_for_function(
            """(expected) => {
                const shown = [...document.querySelectorAll(
                    '.pipeline-node--task .pipeline-node__text')].map((e) => e.textContent);
                return shown.length === expected.length
                    && expected.every((name) => shown.includes(name));
            }""",
            arg=sorted(expected),
            timeout=timeout_ms,
        )
    assert task_names(page) == expected


GEOMETRY = """() => {
    const box = (e) => e.getBoundingClientRect();
    const middle = (e) => (box(e).top + box(e).bottom) / 2;
    return {
        bands: [...document.querySelectorAll('.pipeline-layer')].map(
            (e) => [box(e).top, box(e).bottom]),
        labels: [...document.querySelectorAll('.pipeline-layer-name')].map(
            (e) => [e.textContent, middle(e)]),
        datasets: [...document.querySelectorAll('.pipeline-node--data')].map(
            (e) => [e.textContent, middle(e)]),
    };
}"""


def check_layer_bands(page: Any, layers: dict[str, str]) -> None:
    """On screen, every dataset sits in the band labelled with its catalog layer."""
    geometry = page.evaluate(GEOMETRY)
    bands = geometry["bands"]
    assert len(bands) == len(LAYERS)

    def band_of(y: float) -> int:
        return next(i for i, (top, bottom) in enumerate(bands) if top <= y <= bottom)

    label_of_band = {band_of(y): name for name, y in geometry["labels"]}
    for name, y in geometry["datasets"]:
        if name in layers:  # run_context, filled by a hook, belongs to no layer
            assert label_of_band[band_of(y)] == layers[name], f"{name} drawn in the wrong layer"


def use_viz(page: Any, url: str, project: Path, screenshots: Path, prefix: str) -> list[Path]:
    """What a person does: open it, show parameters, open a plot, look at every pipeline."""
    graph = expected_graph()
    page.goto(url)
    page.wait_for_selector(".pipeline-node--task", timeout=60_000)
    page.wait_for_load_state("networkidle")
    assert page.locator(".feature-hints").count() == 0
    # Offline, the server's PyPI check fails and kedro-viz 12.5 announces "Kedro-Viz None is
    # here!" (it compares "12.5.0" with "None"); a person dismisses it.
    reminder = page.locator(".update-reminder-unexpanded button", has_text="Dismiss")
    if reminder.count():
        reminder.first.click()

    # The default pipeline: every node of the three pipelines, by the names the code gives.
    wait_for_tasks(page, graph["__default__"]["task"])
    datasets = set(page.locator(".pipeline-node--data .pipeline-node__text").all_text_contents())
    assert datasets == graph["__default__"]["data"]
    assert page.locator(".pipeline-layer-name").all_text_contents() == LAYERS

    # Parameters are hidden by default; tick them in the filters and they join the graph.
    assert page.locator(".pipeline-node--parameters").count() == 0
    page.locator("label[for='parameters']").click()
    page.wait_for_selector(".pipeline-node--parameters")
    shown = page.locator(".pipeline-node--parameters .pipeline-node__text").all_text_contents()
    assert set(shown) == graph["__default__"]["parameters"]
    # The minimap covers the bottom layer's label; hide it, and move the pointer away.
    page.get_by_role("button", name="Turn minimap off").click()
    page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] // 2)
    wait_until_still(page, ".pipeline-node, .pipeline-layer")  # the zoom-to-fit transition
    check_layer_bands(page, catalog_layers(project))
    overview = screenshots / f"{prefix}.png"
    page.screenshot(path=overview)

    # A plot: its metadata panel shows the saved PNG as a preview.
    page.locator(".pipeline-node--data", has_text=PLOT).first.click()
    preview = page.locator("img.pipeline-metadata__plot-image")
    preview.wait_for(timeout=30_000)
    assert preview.get_attribute("src").startswith("data:image/png;base64,iVBOR")
    assert page.locator(".pipeline-metadata__title").inner_text().strip() == PLOT
    wait_until_still(page, ".pipeline-metadata, img.pipeline-metadata__plot-image")
    with_preview = screenshots / f"{prefix}-preview.png"
    page.screenshot(path=with_preview)
    page.locator(".pipeline-metadata__close-button").click()

    # Each pipeline from the selector shows exactly its own nodes. (Not before the layer
    # check: after a switch kedro-viz 12.5 can keep a pipeline's layer labels in the order
    # of the previous one.)
    selector = page.locator("[data-test='kedro-pipeline-selector']")
    for name in (*PIPELINES, "__default__"):
        selector.locator(".dropdown__label").click()
        selector.locator(".menu-option", has=page.get_by_text(name, exact=True)).click()
        wait_for_tasks(page, graph[name]["task"])
        assert selector.locator(".dropdown__label").inner_text().strip() == name
    return [overview, with_preview]


# --- tests ---------------------------------------------------------------------------------


def test_kedro_viz_server(finished_project: Path, browser: Any, tmp_path: Path):
    """`kedro viz run --no-browser --env test`: on 127.0.0.1 only, offline, all pipelines."""
    project = finished_project
    port = free_port()
    log = (tmp_path / "viz.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "kedro", "viz", "run", "--no-browser", "--env", "test"]
        + ["--port", str(port)],
        cwd=project,
        env={**ENV, **offline_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopping it stops its server child
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(
            server, lambda: json.loads(http_get(url + "api/main")), tmp_path / "viz.log"
        )
        assert_loopback_only(port)
        check_api(lambda path: json.loads(http_get(url + "api/" + path)), project)

        session = Session(browser, (url,), init_script=NO_TOUR)
        try:
            screenshots = use_viz(session.page, url, project, tmp_path, "kedro-viz")
            session.assert_offline(ALLOWED_OFFLINE_FAILURES)
        finally:
            session.close()
        check_screenshots(screenshots, publish=True)
    finally:
        stop_server(server, port)
        log.close()


def test_kedro_viz_static_build(finished_project: Path, browser: Any, tmp_path: Path):
    """`kedro viz build --include-previews` makes a site that works from disk, no server."""
    project = finished_project
    # `kedro viz build` has no --env option; it reads KEDRO_ENV like `kedro run` does.
    result = kedro(
        project, "viz", "build", "--include-previews", env={**offline_env(), "KEDRO_ENV": "test"}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Success" in output, output[-4000:]
    build = project / "build"
    check_api(lambda path: json.loads((build / "api" / path).read_text()), project)

    # Any file is local; kedro-viz 12.5 even asks for file:///api/run-status (an absolute
    # path, so the run-status panel stays empty in a build opened from disk).
    session = Session(browser, ("file:",), init_script=NO_TOUR)
    try:
        index = (build / "index.html").as_uri()
        screenshots = use_viz(session.page, index, project, tmp_path, "build")
        session.assert_offline(ALLOWED_OFFLINE_FAILURES)
        served = [u for u in session.requests if u.startswith(("http:", "https:"))]
        assert all(u.startswith(ALLOWED_OFFLINE_FAILURES) for u in served), served
    finally:
        session.close()
    check_screenshots(screenshots, publish=False)
