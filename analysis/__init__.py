"""The pure analysis of a trace and of the model: the maths behind every view, the explanation methods
and the metrics that judge them. No drawing and no page here: the viewer, the training and the
benches all import from it."""
