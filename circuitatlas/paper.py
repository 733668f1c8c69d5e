"""The source paper's experiment as ``circuitatlas reproduce`` runs it: its settings and how many
checkpoints the extra checks sample (constants only, so the CLI can show them without importing
the heavy modules)."""

from __future__ import annotations

PAPER = "arXiv 2509.15269"
SHAPE = "pythia-14m"  # the trained run's shape (``train-toy --shape``)
TAUS = (0.3, 0.5, 0.7, 0.9)  # the thresholds of the τ check; the paper's is 0.7
ABLATIONS = ("zero", "mean", "resample")  # the paper's is zero
OUTPUT_DEFINITIONS = ("write", "resid")
CHECK_STEPS = 36  # checkpoints of the mean, resample and second-task sweeps (a spread)
CIRCUIT_STEPS = 8  # checkpoints of that spread whose circuits are found, for both tasks
