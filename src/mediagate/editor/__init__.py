"""The image editor: uploaded and produced images, style and character presets."""
