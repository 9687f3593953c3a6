"""`slimformer optimize`: the whole chain in one run, and the fastest variant within budget."""
