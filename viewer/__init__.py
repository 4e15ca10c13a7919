"""Pure views over a Dual-ViT attention trace: numpy arrays, OpenCV overlays and plotly figures, no UI."""
