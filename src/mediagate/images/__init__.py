"""Image handling: output sizing, safe intake of uploaded images and the offline sandbox engine."""
