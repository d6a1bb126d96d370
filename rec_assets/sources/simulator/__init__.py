"""The embedded catalog simulator: a deterministic video catalogue and its watch history, in the canonical layout.

``generate`` writes a directory that ``CanonicalSource`` reads; the same config gives the same bytes in every run
and process. Modules: ``config`` (knobs, presets), ``vocab`` (fixed vocabularies), ``world`` (hidden factors, titles,
users), ``events`` (watch events), ``text`` (synopses), ``art`` (cover art), ``generator`` (writes the directory).
The generative model is described in docs/design.md ("The catalog simulator").
"""

from rec_assets.sources.simulator.config import GENERATOR_VERSION, PRESETS, SimulatorConfig, config_for, simulator_span
from rec_assets.sources.simulator.generator import (
    GENERATOR_NAME,
    IMAGES_DIR,
    ORACLE_FILE,
    HiddenFactors,
    Simulation,
    ensure_generated,
    generate,
    generate_hidden,
    simulate,
    write_oracle_factors,
)
from rec_assets.sources.simulator.world import LATENT_PARTS

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "IMAGES_DIR",
    "LATENT_PARTS",
    "ORACLE_FILE",
    "PRESETS",
    "HiddenFactors",
    "Simulation",
    "SimulatorConfig",
    "config_for",
    "ensure_generated",
    "generate",
    "generate_hidden",
    "simulate",
    "simulator_span",
    "write_oracle_factors",
]
