"""The paper's own evidence for core concept neurons, reproducible on any circuit (``neurflow validate``).

- ``knockout``: the knockout concept V_a^(S knocked out) and the loss L(S, a) of Definition 2, exactly and batched;
- ``correlation`` (Figure 6): L(S, a) against the summed |T(a, s)| over random neuron sets S;
- ``optimality`` (Figure 4): L(core set, a) against random sets and cheap baselines of the same size;
- ``k_sensitivity`` (Table 5): core sets for other k against k = 50;
- ``crops`` (Figure 18): core sets with other patch scale mixes against 1 / 0.5 / 0.25.

Each study returns a :class:`~neurflow.experiments.validation.result.StudyResult` (its CSV rows, summary
figures and parameters) and has a ``plot_<study>`` function; the CLI writes the CSV and PNG and records the study
in the graph (``neurflow.graph.study_records``).
"""
