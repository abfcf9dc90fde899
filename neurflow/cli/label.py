"""``neurflow label``: concept labels and feature evolution of a class circuit from a multimodal LLM."""

from __future__ import annotations

from typing import Any

import click

from neurflow.cli.db import connection_options
from neurflow.cli.errors import CleanErrorsCommand
from neurflow.cli.options import split_list
from neurflow.graph.connection import open_driver
from neurflow.labelling import llm
from neurflow.labelling.requests import DETAILS, LabelRequest, estimate_tokens, image_tokens
from neurflow.labelling.run import LabelSettings, plan_requests, run_requests
from neurflow.workbench.client import GraphClient
from neurflow.workbench.locate import class_of, locate_circuit

MODEL_ENV = "NEURFLOW_LLM_MODEL"


def _describe(number: int, total: int, request: LabelRequest, detail: str, cached: bool | None) -> list[str]:
    text_tokens, image_tokens_ = estimate_tokens(request, detail)
    if request.kind == "caption":
        what = f"caption   {request.group}"
    else:
        what = f"evolution {request.group} <- {', '.join(request.lower)}"
    per_group = "+".join(str(n) for n in request.images_per_group)
    images = f"{len(request.images)} images" + (f" ({per_group})" if len(request.images_per_group) > 1 else "")
    cache = "" if cached is None else ("; cached: yes, costs nothing" if cached else "; cached: no")
    user = next(m for m in request.messages if m["role"] == "user")["content"][0]["text"]
    head = " ".join(user.split())
    return [
        f"[{number}/{total}] {what}: {images}, ~{text_tokens + image_tokens_} input tokens "
        f"({text_tokens} text + {image_tokens_} image){cache}",
        f"    prompt {request.prompt.id}: {head[:110]}{'...' if len(head) > 110 else ''}",
    ]


@click.command(cls=CleanErrorsCommand)
@click.option("--model", "-m", required=True, help="Model name (or name@weightsId) of the circuit.")
@click.option("--class", "-c", "class_", required=True, help="Class name, index or wnid.")
@click.option("--layers", default=None, help="Comma-separated layers to label (default: all of the circuit).")
@click.option("--llm-model", envvar=MODEL_ENV, default=llm.DEFAULT_MODEL, show_default=True,
              help=f"Multimodal chat model [env {MODEL_ENV}].")
@click.option("--base-url", envvar=llm.BASE_URL_ENV, default=None,
              help=f"OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama), "
                   f"http://127.0.0.1:8000/v1 (vLLM), https://RESOURCE.openai.azure.com/openai/v1 (Azure) "
                   f"[env {llm.BASE_URL_ENV}; default {llm.DEFAULT_BASE_URL}].")
@click.option("--api-key-env", default=llm.DEFAULT_KEY_ENV, show_default=True, metavar="NAME",
              help="Environment variable that holds the API key (the key itself is never printed).")
@click.option("--max-images", default=8, show_default=True, type=click.IntRange(1),
              help="Central patches sent per group caption.")
@click.option("--evolution-images", default=4, show_default=True, type=click.IntRange(1),
              help="Central patches per group in a feature-evolution request.")
@click.option("--max-lower", default=3, show_default=True, type=click.IntRange(1),
              help="Lower groups (largest positive weights) per feature-evolution request.")
@click.option("--detail", type=click.Choice(DETAILS), default="low", show_default=True,
              help="Image detail asked of the endpoint (also decides the token estimate).")
@click.option("--image-size", default=224, show_default=True, type=click.IntRange(16),
              help="Longer side of the patch images sent, in pixels.")
@click.option("--captions/--no-captions", default=True, show_default=True, help="Caption the groups.")
@click.option("--evolution/--no-evolution", default=True, show_default=True,
              help="Explain how each group forms from its lower groups.")
@click.option("--max-tokens", default=500, show_default=True, type=click.IntRange(1), help="Answer length cap.")
@click.option("--temperature", default=0.0, show_default=True, type=float)
@click.option("--timeout", default=120.0, show_default=True, type=float, help="Seconds per request.")
@click.option("--max-retries", default=5, show_default=True, type=click.IntRange(0),
              help="Retries on 429, 5xx, timeouts and connection errors (exponential backoff with jitter).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help=f"Answer cache [env {llm.CACHE_ENV}; default ~/.cache/neurflow/llm].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the answer cache.")
@click.option("--circuit-id", default=None, help="The circuit, when several match the model and class.")
@click.option("--circuit-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Read the circuit from this folder (or a folder of circuits) instead of the graph's record.")
@click.option("--dry-run", is_flag=True,
              help="Show the requests and a token estimate; sends nothing, needs no key and writes nothing.")
@connection_options
def label(model: str, class_: str, layers: str | None, llm_model: str, base_url: str | None, api_key_env: str,
          max_images: int, evolution_images: int, max_lower: int, detail: str, image_size: int, captions: bool,
          evolution: bool, max_tokens: int, temperature: float, timeout: float, max_retries: int,
          cache_dir: str | None, no_cache: bool, circuit_id: str | None, circuit_dir: str | None, dry_run: bool,
          settings: Any) -> None:
    """Label the neuron groups of a class circuit with a multimodal LLM and store the labels on the graph.

    Every group gets a caption of its most central patches; every group with lower groups also gets a feature
    evolution (how its feature forms from those of the lower groups), stored on the FLOWS_TO edges. Answers
    are cached by a hash of images, prompt and model, so a re-run sends nothing.

    \b
    Examples:
      OPENAI_API_KEY=... neurflow label --model efficientnet-lite0 --class Samoyed
      neurflow label -m efficientnet-lite0 -c Samoyed --dry-run
      neurflow label -m efficientnet-lite0 -c 207 --base-url http://127.0.0.1:11434/v1 --llm-model llava:13b
    """
    target = class_of(class_)  # an unknown class fails before anything else
    try:
        options = LabelSettings(
            layers=split_list(layers), max_images=max_images, evolution_images=evolution_images,
            max_lower=max_lower, detail=detail, image_size=image_size, captions=captions, evolution=evolution,
            max_tokens=max_tokens, temperature=temperature,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    api_key = None if dry_run else llm.resolve_api_key(api_key_env, llm.resolve_base_url(base_url))

    graph = None
    try:
        if circuit_dir is None or not dry_run:  # a dry run on a folder needs no graph
            graph = GraphClient(settings, open_driver(settings))
        found = locate_circuit(graph, cls=target.index, model=model, circuit_id=circuit_id, folder=circuit_dir)
        circuit, folder = found.circuit, found.folder
        requests = plan_requests(circuit, folder, options)
        cache = None if no_cache else llm.ResponseCache(cache_dir)
        client = llm.LLMClient(
            model=llm_model, base_url=base_url, api_key=api_key, api_key_env=api_key_env, timeout=timeout,
            retry=llm.RetryPolicy(max_retries=max_retries), cache=cache,
        )
        click.echo(f"Circuit {circuit.id}: {circuit.model.name}, class {target.index} ({target.name}), {folder}")
        click.echo(f"{len(requests)} request(s) to {llm_model} at {client.base_url}")
        if dry_run:
            _dry_run(requests, client, options)
            return
        report = run_requests(requests, client, options, driver=graph.driver if graph else None,
                              database=settings.database, echo=click.echo)
        click.echo(
            f"Done: {report.requests} request(s), {report.sent} sent, {report.cached} from the cache; "
            f"{report.parsed} parsed, {report.unparsed} stored raw; {report.written} node(s)/edge(s) written."
        )
    finally:
        if graph is not None:
            graph.close()


def _dry_run(requests: list[LabelRequest], client: llm.LLMClient, options: LabelSettings) -> None:
    total_text = total_images = cached = 0
    for number, request in enumerate(requests, start=1):
        hit = None
        if client.cache is not None:
            hit = client.cached(request.messages, request.prompt.id, max_tokens=options.max_tokens,
                                temperature=options.temperature)
            cached += int(hit)
        for line in _describe(number, len(requests), request, options.detail, hit):
            click.echo(line)
        text, images = estimate_tokens(request, options.detail)
        total_text += text
        total_images += images
    per_image = image_tokens(options.image_size, options.image_size, options.detail)
    rule = ("detail=low: 85 tokens per image" if options.detail == "low"
            else f"detail={options.detail} counted as high: 85 + 170 per 512-px tile, {per_image} per "
                 f"{options.image_size}-px image")
    click.echo(
        f"Estimate: ~{total_text + total_images} input tokens ({total_text} text by characters/4, {total_images} "
        f"image by OpenAI's tile formula for GPT-4o-class models, {rule}), up to "
        f"{len(requests) * options.max_tokens} output tokens."
    )
    if client.cache is not None:
        click.echo(f"{cached} of {len(requests)} request(s) are cached and would cost nothing.")
    click.echo("Dry run: nothing sent, nothing written.")


if __name__ == "__main__":
    label()
