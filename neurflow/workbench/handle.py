"""A circuit, opened: the circuit found by the one rule, its folder and graph entry, its vectors, and (on first
use) the model with the circuit's weights and layouts and the circuit's own images, recorded once.

>>> from neurflow.workbench import connect, open_circuit
>>> samoyed = open_circuit(connect(), cls="Samoyed", model="efficientnet-lite0")      # doctest: +SKIP
>>> samoyed.circuit.id, samoyed.folder                                                 # doctest: +SKIP
>>> samoyed.groups()[["group", "layer", "influence", "neurons"]].head()                # doctest: +SKIP
>>> samoyed.model.weights_id                        # loads the model the circuit was built with  # doctest: +SKIP

Nothing here imports torch until the model, the images or an experiment is asked for. Every failure to find
or open a circuit is a :class:`~neurflow.errors.CircuitLookupError` naming what to pass: no circuit, several,
a moved folder, moved or changed images (``images=``: where they are now), other weights (``weights=``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neurflow.analysis import circuit_influence, layer_coverage
from neurflow.circuit import Circuit, ClassInfo
from neurflow.format import load_vectors
from neurflow.graph.circuits import CircuitRef
from neurflow.workbench.client import GraphClient
from neurflow.workbench.locate import CircuitLocation, locate_circuit

if TYPE_CHECKING:
    import pandas as pd

    from neurflow.engine.models import LoadedModel
    from neurflow.engine.patches import ViewImage
    from neurflow.engine.recording import Recording
    from neurflow.experiments.validation.inputs import StudyInputs


@dataclass
class CircuitHandle:
    """An opened circuit (see the module). ``graph`` is where its experiments and studies are recorded (None:
    nowhere); ``weights``, ``device``, ``images`` say how to load its model and find its images."""

    location: CircuitLocation
    graph: GraphClient | None = None
    weights: str | Path | None = None
    device: str | None = None
    images: str | Path | None = None
    progress: bool = True
    loaded: LoadedModel | None = field(default=None, repr=False)
    """The model, when the caller loaded it already (its weights are checked against the circuit's)."""
    _inputs: dict[str, StudyInputs] = field(default_factory=dict, repr=False)
    _views: list[ViewImage] | None = field(default=None, repr=False)

    @property
    def circuit(self) -> Circuit:
        return self.location.circuit

    @property
    def folder(self) -> Path:
        return self.location.folder

    @property
    def entry(self) -> CircuitRef | None:
        """The circuit's node in the graph (None when opened from a folder without a graph)."""
        return self.location.entry

    @property
    def target(self) -> ClassInfo:
        return self.circuit.target

    @functools.cached_property
    def vectors(self) -> dict[str, np.ndarray]:
        """The circuit's vectors.npz (semantic groups' mean activations, concept activations)."""
        return load_vectors(self.folder)

    def groups(self) -> pd.DataFrame:
        """The neuron groups, logit layer first and by influence within a layer: group id, layer, influence
        (the group's share of what the circuit carries from the logit, within its layer), absolute influence
        (influence x the layer's reach: the share of the logit's whole attribution; NaN for a circuit without
        coverage), member neurons and semantic groups."""
        import pandas as pd

        influence = circuit_influence(self.circuit)
        reach = {row.layer: row.reach for row in layer_coverage(self.circuit)} | {self.circuit.layers[0]: 1.0}
        depth = {layer: i for i, layer in enumerate(self.circuit.layers)}
        rows = [{"group": g.id, "layer": g.layer, "depth": depth[g.layer],
                 "influence": influence.groups.get(g.id, 0.0),
                 "absoluteInfluence": influence.groups.get(g.id, 0.0) * reach[g.layer]
                 if self.circuit.coverage else float("nan"),
                 "neurons": list(g.neurons), "semanticGroups": len(g.semantic_groups), "patches": len(g.patches)}
                for g in self.circuit.neuron_groups]
        frame = pd.DataFrame(rows)
        return frame.sort_values(["depth", "influence"], ascending=[True, False], ignore_index=True)

    def coverage(self) -> pd.DataFrame:
        """Per layer below the logit: targets, the core sets' mean and lowest share of their targets'
        |attribution|, the mean signed share, and the reach (the share of the logit's attribution that reaches
        the layer through core paths; docs/coverage.md)."""
        import pandas as pd

        return pd.DataFrame([{"layer": r.layer, "depth": r.depth, "targets": r.targets,
                              "meanCoreShare": r.mean_core_share, "minCoreShare": r.min_core_share,
                              "meanSignedShare": r.mean_signed_share, "reach": r.reach}
                             for r in layer_coverage(self.circuit)])

    def draw(self, prune: float | None = None) -> Path:
        """The circuit's picture (``circuit.png`` in its folder; ``prune=0.8``: the groups carrying 80 % of each
        layer's influence, ``circuit-pruned-80.png``), drawn as `neurflow draw` does; returns its path."""
        from neurflow.pictures import draw_circuit, picture_path

        return draw_circuit(self.circuit, picture_path(self.folder, prune), self.folder, prune_share=prune)

    def inputs(self, ablation: str = "zero") -> StudyInputs:
        """The model the circuit was built with (its weights checked), the circuit's images (each checked by
        sha256) and patches, and its build settings: what studies and experiments recompute from. The model and
        images are loaded once, and the class's patches recorded once (on first use), for every ablation
        (``mean`` sets each knocked-out channel to its mean over the class's patches, from that recording)."""
        from neurflow.experiments.validation.inputs import study_inputs, with_ablation

        if "zero" not in self._inputs:
            self._inputs["zero"] = study_inputs(self.folder, weights=self.weights, device=self.device,
                                                images=self.images, progress=self.progress, circuit=self.circuit,
                                                loaded=self.model, views=self._views)
        if ablation not in self._inputs:
            self._inputs[ablation] = with_ablation(self._inputs["zero"], ablation, self.progress)
        return self._inputs[ablation]

    def views(self) -> list[ViewImage]:
        """The circuit's images D_c in its order, each checked by sha256 (``images=``: where they are now), as
        the model sees them; what masking runs on."""
        if self._views is None:
            from neurflow.experiments.validation.inputs import circuit_views

            self._views = (self._inputs["zero"].views if "zero" in self._inputs
                           else circuit_views(self.circuit, self.model.preprocessing, self.images))
        return self._views

    def recording(self) -> Recording:
        """The class's patches recorded once with the circuit's model, layers and settings: every layer's
        [patches, neurons] spatial means (``.means``), and the lower layers' full outputs that fit."""
        from neurflow.experiments.validation.inputs import class_recording

        return class_recording(self.inputs(), self.progress)

    @functools.cached_property
    def model(self) -> LoadedModel:
        """The model, loaded with the circuit's weights (``weights=`` or the pretrained ones; random weights
        again from the circuit's seed; or the model given to :func:`open_circuit`, its weights checked), its
        layers set to the layouts the circuit was built with, so that masks reach the neurons it names."""
        from neurflow.engine.segments import resolve_token_activations
        from neurflow.experiments.validation.inputs import circuit_model

        loaded = circuit_model(self.circuit, self.weights, device=self.device, loaded=self.loaded)
        params = self.circuit.params
        resolve_token_activations(loaded.module, list(self.circuit.layers), params.get("class_token", "exclude"),
                                  params.get("layouts"), loaded.preprocessing.crop)
        return loaded

    def __repr__(self) -> str:
        c = self.circuit
        return (f"CircuitHandle({c.target.name!r}, {c.model.name}, circuit {c.id}, {len(c.layers)} layers, "
                f"{len(c.neuron_groups)} groups, folder {self.folder})")


def open_circuit(graph: GraphClient | None = None, *, cls: str | int | None = None, model: str | None = None,
                 circuit_id: str | None = None, folder: str | Path | None = None,
                 weights: str | Path | None = None, device: str | None = None, images: str | Path | None = None,
                 progress: bool = True, loaded: LoadedModel | None = None) -> CircuitHandle:
    """The circuit asked for, opened. Which circuit: :func:`neurflow.workbench.locate.locate_circuit` (the
    class by name, index or wnid; ``model`` a name or a key ``name@weightsId``; ``circuit_id``; ``folder``: a
    circuit folder or a folder of circuits). With ``graph``, the circuit must be in it, and experiments and
    studies run on the handle are recorded there. ``loaded``: the model, when loaded already (its weights must
    be the circuit's)."""
    location = locate_circuit(graph, cls=cls, model=model, circuit_id=circuit_id, folder=folder)
    return CircuitHandle(location, graph, weights, device, images, progress, loaded)
