"""Media handling inside the layer: the PNG codec and the keyframes videos start from."""
