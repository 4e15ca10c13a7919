"""Training, evaluation and the generated scenes of the explorer's default model (not the architecture)."""
