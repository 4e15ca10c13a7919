"""The explorer over a Dual-ViT attention trace: trace maths, drawing, views and the Gradio page."""
