"""Circuit pictures and `neurflow draw`: the full and the pruned view of a saved circuit, and what each layer keeps."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from neurflow.analysis import circuit_influence, layer_coverage, prune
from neurflow.cli.main import main
from neurflow.synthetic import save_synthetic
from tests.helpers import small_synthetic


def test_draw_full_and_pruned_views(tmp_path: Path) -> None:
    circuit = small_synthetic(258)
    folder = save_synthetic(circuit, tmp_path / "c")
    result = CliRunner().invoke(main, ["draw", str(folder), "--prune", "0.5"])
    assert result.exit_code == 0, result.output
    picture = folder / "circuit-pruned-50.png"
    assert result.output.splitlines()[0] == str(picture)
    with Image.open(picture) as image:
        assert image.size[0] > 500 and image.size[1] > 300
    lines = result.output.splitlines()[1:]
    coverage = layer_coverage(circuit)
    assert lines[0] == "  coverage:"
    for row, line in zip(coverage, lines[1:], strict=False):
        assert line.startswith(f"  {row.layer}: the core sets keep {row.mean_core_share:.0%} of their targets'")
        assert f"{row.reach:.1%} of the logit's attribution reaches it" in line
    view = prune(circuit, 0.5, circuit_influence(circuit))
    for layer, line in zip(circuit.layers[1:], lines[1 + len(coverage):], strict=True):
        kept = len(view.neurons[layer])
        groups = circuit.groups_of_layer(layer)
        assert line == (f"  {layer}: {kept} of {len(circuit.neurons[layer])} core neurons, "
                        f"{sum(g.id in view.groups for g in groups)} of {len(groups)} groups carry 50% of the influence")
        assert 0 < kept <= len(circuit.neurons[layer])
    full = CliRunner().invoke(main, ["draw", str(folder)])
    assert full.exit_code == 0 and (folder / "circuit.png").is_file()


def test_draw_refuses_a_share_outside_0_1(tmp_path: Path) -> None:
    folder = save_synthetic(small_synthetic(258), tmp_path / "c")
    result = CliRunner().invoke(main, ["draw", str(folder), "--prune", "1.5"])
    assert result.exit_code != 0 and "--prune" in result.output
