"""Committee of Land and Property Relations: the land register (land-plot-info)."""
