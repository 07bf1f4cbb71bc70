"""Architecture factories in plain ``torch.nn`` (imported only when a model is built)."""
