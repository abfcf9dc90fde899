"""Model registry: weights, classes and layers, with clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurflow.classes import imagenet_categories, resolve_class
from neurflow.engine.models import load_model
from neurflow.registry import REGISTRY, ModelError


def test_registry_has_the_papers_layer_lists() -> None:
    assert REGISTRY["resnet50"].layers == ("fc", "layer4.2", "layer4.1", "layer4.0", "layer3.5", "layer3.4",
                                           "layer3.3", "layer3.2", "layer3.1", "layer3.0", "layer2.3")
    assert REGISTRY["googlenet"].layers[0] == "fc" and REGISTRY["googlenet"].layers[-1] == "maxpool2"


@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_papers_models_load_with_random_weights_and_their_layers_exist(name: str) -> None:
    loaded = load_model(name, random_weights=True, device="cpu")
    assert loaded.weights_id == "random:seed=0"
    assert set(loaded.layers) <= set(loaded.module_names())
    assert not loaded.module.training


def test_classes_by_index_name_and_wnid() -> None:
    categories = imagenet_categories()
    assert resolve_class("207", categories).name == "golden retriever"
    assert resolve_class("golden Retriever", categories).index == 207
    samoyed = resolve_class("n02111889", categories)
    assert (samoyed.index, samoyed.name, samoyed.wnid) == (258, "Samoyed", "n02111889")


def test_unknown_class_lists_the_closest_names() -> None:
    with pytest.raises(ModelError, match="unknown class 'golden retreiver'.*golden retriever"):
        resolve_class("golden retreiver", imagenet_categories())
    with pytest.raises(ModelError, match="out of range"):
        resolve_class("1000", imagenet_categories())


def test_an_unknown_layer_names_the_closest_modules() -> None:
    with pytest.raises(ModelError, match=r"no module 'layer9'; closest: layer4, layer3"):
        load_model("resnet18", random_weights=True, layers=["fc", "layer9"])


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(ModelError, match="unknown model 'resnet5'.*resnet50"):
        load_model("resnet5")


def test_weights_file_and_torchvision_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_model("resnet18", random_weights=True, seed=3)
    path = tmp_path / "weights.pt"
    torch.save(source.module.state_dict(), path)
    from_file = load_model("resnet18", weights=path)
    assert from_file.weights_id.startswith("sha256:")
    assert torch.equal(from_file.module.fc.weight, source.module.fc.weight)
    # the pretrained route reads torchvision's cache (TORCH_HOME), no network needed
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.module.state_dict(), cache / "resnet18-f37072fd.pth")
    cached = load_model("resnet18")
    assert cached.weights_id == "torchvision:IMAGENET1K_V1"
    assert torch.equal(cached.module.fc.weight, source.module.fc.weight)


def test_missing_pretrained_weights_name_the_offline_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # an unroutable address makes the download fail at once, online or not
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(ModelError, match="no pretrained weights for resnet50.*--weights.*efficientnet-lite0"):
        load_model("resnet50")


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"unexpected": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="does not fit resnet18"):
        load_model("resnet18", weights=path)


def test_efficientnet_lite0_is_pretrained_offline() -> None:
    loaded = load_model("efficientnet-lite0")
    assert loaded.weights_id.startswith("sha256:")
    assert loaded.preprocessing.mean == (0.5, 0.5, 0.5)
