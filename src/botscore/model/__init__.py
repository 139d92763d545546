"""The model: feature catalog, model directories, batch scoring and training."""
