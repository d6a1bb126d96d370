"""Which encoders made a week's title features, as one label: ``<cover-art encoder>+<synopsis encoder>``.

Each embedding artifact stores its encoder's name in ``meta.json`` (``encoder``), e.g. ``efficientnet_lite0`` and
``glove50``, so an evaluation can say ``efficientnet_lite0+glove50``. Artifacts written before the key existed are
read from what they recorded then: ResNet-34 weights (``weights_used``) and catalogue word2vec or a vectors file
(``vectors_used``).
"""

from __future__ import annotations

from pathlib import Path

from rec_assets.storage.artifacts import Artifact, ArtifactRef

#: A feature artifact: the reference an asset hands on, an opened artifact, or its directory.
FeatureArtifact = ArtifactRef | Artifact | str | Path


def _meta(artifact: FeatureArtifact) -> dict:
    if isinstance(artifact, ArtifactRef):
        artifact = artifact.open()
    elif not isinstance(artifact, Artifact):
        artifact = Artifact(Path(artifact))
    return artifact.meta()


def cover_art_encoder(artifact: FeatureArtifact) -> str:
    """The cover-art artifact's encoder, e.g. ``efficientnet_lite0``, ``resnet34`` or ``resnet34-random``."""
    meta = _meta(artifact)
    if meta.get("encoder"):
        return str(meta["encoder"])
    return "resnet34-random" if str(meta.get("weights_used", "")).startswith("random") else "resnet34"


def synopsis_encoder(artifact: FeatureArtifact) -> str:
    """The synopsis artifact's encoder: ``glove50``, ``word2vec``, ``minilm`` or ``word_vectors_file``."""
    meta = _meta(artifact)
    if meta.get("encoder"):
        return str(meta["encoder"])
    return "word_vectors_file" if str(meta.get("vectors_used", "")).startswith("pretrained:") else "word2vec"


def encoders_label(cover_art: FeatureArtifact, synopsis: FeatureArtifact) -> str:
    """``<cover-art encoder>+<synopsis encoder>`` of two feature artifacts, e.g. ``efficientnet_lite0+glove50``."""
    return f"{cover_art_encoder(cover_art)}+{synopsis_encoder(synopsis)}"


def week_encoders_label(artifacts_root: str | Path, week: str) -> str:
    """The label of a week's features under an artifacts root (``<root>/features/<kind>/<week>``)."""
    features = Path(artifacts_root) / "features"
    return encoders_label(features / "cover_art" / week, features / "synopsis" / week)
